// The Dockerfile subset `asb image build` builds (pure): one stage, FROM, RUN, COPY, ENV, WORKDIR,
// USER, ENTRYPOINT, CMD, LABEL, EXPOSE; `\` continues a line, `#` starts a comment. Everything
// else is refused with its line number rather than skipped: an image built without a step it
// asked for would be wrong in silence.

export type Instruction =
  | { op: 'FROM'; line: number; image: string }
  | { op: 'RUN'; line: number; argv: string[]; shell: boolean }
  | { op: 'COPY'; line: number; sources: string[]; dest: string }
  | { op: 'ENV'; line: number; vars: Array<[string, string]> }
  | { op: 'WORKDIR'; line: number; dir: string }
  | { op: 'USER'; line: number; user: string }
  | { op: 'ENTRYPOINT' | 'CMD'; line: number; argv: string[] }
  | { op: 'LABEL'; line: number; labels: Array<[string, string]> }
  | { op: 'EXPOSE'; line: number; ports: string[] };

export class DockerfileError extends Error {
  override name = 'DockerfileError';
}

const SHELL = ['/bin/sh', '-c'];

export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    // Continuations join without the line break; comment lines inside one are dropped, as Docker does.
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, '');
      i++;
      while (i < lines.length - 1 && /^\s*#/.test(lines[i]!)) i++;
      line += /^\s*#/.test(lines[i]!) ? '' : lines[i]!;
    }
    const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(line);
    if (!m) throw new DockerfileError(`line ${start}: cannot read "${line.trim().slice(0, 60)}"`);
    const op = m[1]!.toUpperCase();
    const rest = (m[2] ?? '').trim();
    const fail = (why: string) => new DockerfileError(`line ${start}: ${op}: ${why}`);
    if (!rest) throw fail('needs arguments');
    switch (op) {
      case 'FROM': {
        const words = rest.split(/\s+/);
        if (words.some((w) => w.startsWith('--'))) throw fail('flags (--platform) are not supported');
        if (words.length > 1) throw fail('one stage only: multi-stage builds (AS) are not supported');
        if (out.some((x) => x.op === 'FROM')) throw fail('one stage only: a second FROM is not supported');
        out.push({ op: 'FROM', line: start, image: words[0]! });
        break;
      }
      case 'RUN': {
        if (rest.startsWith('--')) throw fail(`flags (${rest.split(/\s/)[0]}) are not supported`);
        const exec = jsonArray(rest);
        out.push(
          exec
            ? { op, line: start, argv: exec, shell: false }
            : { op, line: start, argv: [...SHELL, rest], shell: true },
        );
        break;
      }
      case 'CMD':
      case 'ENTRYPOINT':
        out.push({ op, line: start, argv: jsonArray(rest) ?? [...SHELL, rest] });
        break;
      case 'COPY': {
        if (rest.startsWith('--')) throw fail(`flags (${rest.split(/\s/)[0]}) are not supported`);
        const words = jsonArray(rest) ?? rest.split(/\s+/);
        if (words.length < 2) throw fail('needs a source and a destination');
        if (words.some((w) => /[*?[]/.test(w))) throw fail('wildcards are not supported');
        out.push({ op, line: start, sources: words.slice(0, -1), dest: words.at(-1)! });
        break;
      }
      case 'ENV':
      case 'LABEL': {
        const pairs = keyValues(rest, op === 'ENV');
        if (!pairs) throw fail('expected NAME=VALUE pairs (or, for ENV, NAME VALUE)');
        out.push(op === 'ENV' ? { op, line: start, vars: pairs } : { op, line: start, labels: pairs });
        break;
      }
      case 'WORKDIR':
        out.push({ op, line: start, dir: rest });
        break;
      case 'USER':
        out.push({ op, line: start, user: rest });
        break;
      case 'EXPOSE':
        out.push({ op, line: start, ports: rest.split(/\s+/).map((p) => (p.includes('/') ? p : `${p}/tcp`)) });
        break;
      default:
        throw new DockerfileError(`line ${start}: ${op} is not supported by asb image build`);
    }
  }
  if (out[0]?.op !== 'FROM') throw new DockerfileError('the Dockerfile must begin with FROM');
  return out;
}

/** `["a", "b"]` (the exec form), or undefined for the shell form. */
function jsonArray(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    /* not JSON: Docker takes it as the shell form */
  }
  return undefined;
}

/** NAME=VALUE pairs (values may be "quoted"), or the legacy `NAME VALUE` form when allowed. */
function keyValues(text: string, legacy: boolean): Array<[string, string]> | undefined {
  const first = /^([^\s=]+)(\s+|=)/.exec(text);
  if (!first) return undefined;
  if (first[2] !== '=') return legacy ? [[first[1]!, text.slice(first[0].length)]] : undefined;
  const out: Array<[string, string]> = [];
  // NAME=VALUE, the value "double quoted" (with \ escapes), 'single quoted', or bare (\ escapes a space).
  const re = /([^\s=]+)=(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|((?:\\.|[^\s\\])*))(?:\s+|$)/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m || m[0] === '') return undefined;
    const raw = m[2] ?? m[3] ?? m[4] ?? '';
    out.push([m[1]!, m[3] !== undefined ? raw : raw.replace(/\\(.)/g, '$1')]);
    at = re.lastIndex;
  }
  return out.length ? out : undefined;
}
