// Our CRDs (deploy/crds, generated from our types) against upstream v0.5.6's and v1.0.1's (k8s/crds
// of the Go module sigs.k8s.io/agent-sandbox, from the module proxy), field by field: names, versions,
// subresources, printer columns, conversion, and every schema path with its type. What differs
// on purpose is listed below with the reason; anything else fails. The test prints the summary.
//
// The one large, deliberate difference: upstream embeds Kubernetes' whole PodSpec and
// PersistentVolumeClaimSpec schemas (~930 paths per kind); ours types what our code reads and
// keeps the rest open (x-kubernetes-preserve-unknown-fields). Nothing valid is refused either
// way: the Pod or PVC the controller creates is validated by the API server then, and a bad field
// shows as the Sandbox's ReconcilerError. The cost, which we accept for now: a misspelt PodSpec
// field is kept instead of pruned, and kubectl's field validation cannot warn about it there.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { upstreamModuleDir } from './cluster.ts';

const repo = new URL('../../', import.meta.url).pathname;
const FILES = [
  'agents.x-k8s.io_sandboxes.yaml',
  'extensions.agents.x-k8s.io_sandboxclaims.yaml',
  'extensions.agents.x-k8s.io_sandboxtemplates.yaml',
  'extensions.agents.x-k8s.io_sandboxwarmpools.yaml',
];

/** Fields we have and upstream has not, and why. */
const OUR_EXTRA_FIELDS: Record<string, string> = {
  'sandboxtemplates .status':
    'v0.4.x served an empty template status; old `kubectl get -o yaml` output that holds one still applies (upstream v0.5 would prune it)',
};

type Node = {
  type?: string;
  format?: string;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  properties?: Record<string, Node>;
  items?: Node;
  additionalProperties?: Node | boolean;
  enum?: unknown[];
};
interface Flat {
  type: string;
  format?: string;
  intOrString: boolean;
  open: boolean;
  enum?: string;
}

function flatten(s: Node | undefined, path: string, out: Map<string, Flat>): Map<string, Flat> {
  if (!s) return out;
  out.set(path, {
    type: s.type ?? '',
    format: s.format,
    intOrString: !!s['x-kubernetes-int-or-string'],
    open: !!s['x-kubernetes-preserve-unknown-fields'],
    enum: s.enum ? JSON.stringify([...s.enum].sort()) : undefined,
  });
  for (const [k, v] of Object.entries(s.properties ?? {})) flatten(v, `${path}.${k}`, out);
  if (s.items) flatten(s.items, `${path}[]`, out);
  if (s.additionalProperties && typeof s.additionalProperties === 'object')
    flatten(s.additionalProperties, `${path}{}`, out);
  return out;
}

/** The nearest ancestor (or the path itself) that our schema keeps open. */
function openAncestor(path: string, ours: Map<string, Flat>): string | undefined {
  for (let p = path; p; p = p.replace(/(\.[^.[\]{}]+|\[\]|\{\})$/, '')) if (ours.get(p)?.open) return p;
  return undefined;
}

/** What each upstream version's CRDs differ from ours in on purpose, beyond OUR_EXTRA_FIELDS. */
const VERSIONS: Array<{
  version: string;
  /** API versions we serve and this upstream does not, with the reason. */
  ourExtraVersions: Record<string, string>;
  /** This upstream has no conversion webhook: ours keeps one for the versions above. */
  conversionDiffers?: string;
  /** Fields of ours this version has not, and why. */
  ourExtraFields: Record<string, string>;
}> = [
  { version: 'v0.5.6', ourExtraVersions: {}, ourExtraFields: {} },
  {
    version: 'v1.0.1',
    ourExtraVersions: {
      v1alpha1: "the seeds' YAML is v1alpha1 and must apply unchanged; v1.0 removed it",
    },
    conversionDiffers: 'v1.0 serves one version and needs no webhook; ours converts v1alpha1 to the v1beta1 it stores',
    ourExtraFields: {},
  },
];

for (const cfg of VERSIONS)
  describe(`our CRDs against upstream ${cfg.version}`, () => {
    let upDir: string;
    before(() => {
      upDir = join(upstreamModuleDir(cfg.version), 'k8s/crds');
    });

    for (const file of FILES) {
      it(`${file}: same names, versions, subresources, columns, conversion; schema differences only the justified ones`, (t) => {
        const up = parse(readFileSync(join(upDir, file), 'utf8'));
        const ours = parse(readFileSync(join(repo, 'deploy/crds', file), 'utf8'));
        const plural = up.spec.names.plural as string;
        const extra = { ...OUR_EXTRA_FIELDS, ...cfg.ourExtraFields };
        assert.equal(ours.metadata.name, up.metadata.name);
        assert.deepEqual([ours.spec.group, ours.spec.scope], [up.spec.group, up.spec.scope]);
        assert.deepEqual(ours.spec.names, up.spec.names);
        if (cfg.conversionDiffers) {
          assert.equal(up.spec.conversion, undefined);
          assert.equal(ours.spec.conversion.strategy, 'Webhook');
        } else {
          assert.equal(ours.spec.conversion.strategy, up.spec.conversion.strategy);
          assert.deepEqual(
            ours.spec.conversion.webhook.conversionReviewVersions,
            up.spec.conversion.webhook.conversionReviewVersions,
          );
          assert.deepEqual(
            ours.spec.conversion.webhook.clientConfig.service,
            up.spec.conversion.webhook.clientConfig.service,
          );
        }
        assert.deepEqual(
          ours.spec.versions
            .map((v: any) => v.name)
            .filter((n: string) => !cfg.ourExtraVersions[n])
            .sort(),
          up.spec.versions.map((v: any) => v.name).sort(),
        );
        const unjustified: string[] = [];
        const summary: string[] = [];
        for (const uv of up.spec.versions) {
          const ov = ours.spec.versions.find((v: any) => v.name === uv.name);
          assert.deepEqual([ov.served, ov.storage], [uv.served, uv.storage], `${uv.name} served/storage`);
          assert.deepEqual(ov.subresources, uv.subresources, `${uv.name} subresources`);
          assert.deepEqual(ov.additionalPrinterColumns, uv.additionalPrinterColumns, `${uv.name} printer columns`);

          const u = flatten(uv.schema.openAPIV3Schema, '', new Map());
          const o = flatten(ov.schema.openAPIV3Schema, '', new Map());
          const underOpen = new Map<string, number>();
          let intFormats = 0;
          for (const [path, uf] of u) {
            const of = o.get(path);
            const open = openAncestor(path, o);
            if (!of) {
              if (open) underOpen.set(open, (underOpen.get(open) ?? 0) + 1);
              else unjustified.push(`${uv.name} ${path}: upstream has it, we do not`);
              continue;
            }
            if (of.type !== uf.type || of.intOrString !== uf.intOrString)
              unjustified.push(
                `${uv.name} ${path}: type ${uf.type}${uf.intOrString ? ' int-or-string' : ''} upstream, ${of.type}${of.intOrString ? ' int-or-string' : ''} ours`,
              );
            if (uf.enum && of.enum && uf.enum !== of.enum)
              unjustified.push(`${uv.name} ${path}: enum ${uf.enum} upstream, ${of.enum} ours`);
            if (uf.format !== of.format) {
              // int32/int64 are documentation for clients: the API server does not check them; our
              // own validation bounds every integer field.
              if (uf.type === 'integer' && /^int(32|64)$/.test(uf.format ?? '') && of.format === undefined)
                intFormats++;
              else unjustified.push(`${uv.name} ${path}: format ${uf.format} upstream, ${of.format} ours`);
            }
            if (of.open && !uf.open && !(uf.type === 'object' || uf.type === 'array'))
              unjustified.push(`${uv.name} ${path}: open in ours only`);
          }
          for (const path of o.keys()) {
            if (u.has(path) || openAncestor(path, u)) continue;
            const key = `${plural} ${path}`;
            if (!extra[Object.keys(extra).find((k) => key === k || key.startsWith(`${k}.`)) ?? ''])
              unjustified.push(`${uv.name} ${path}: ours only`);
          }
          summary.push(
            `${uv.name}: ${u.size} upstream paths, ${o.size} ours; ${intFormats} integers without upstream's int32/int64 format`,
          );
          for (const [p, n] of [...underOpen].sort((a, b) => b[1] - a[1]))
            summary.push(
              `  ${n} upstream paths under ${p}, which ours keeps open (x-kubernetes-preserve-unknown-fields)`,
            );
        }
        for (const line of summary) t.diagnostic(line);
        assert.deepEqual(unjustified, [], `unjustified differences:\n${unjustified.join('\n')}`);
      });
    }
  });
