// The Dockerfile subset `asb image build` builds (pure: the text in, its stages out).
//
//   ARG NAME[=default] ...       before the first FROM (global: usable in FROM lines only), or in
//                                a stage (declared there: visible to later steps and to RUN)
//   FROM image|scratch|stage [AS name]   several: a multi-stage build; the last stage is the image
//   RUN, CMD, ENTRYPOINT         shell or exec (JSON) form
//   COPY [--from=stage|index|image] [--chown=UID[:GID]] SRC... DEST   (also the JSON form)
//   ENV, LABEL, WORKDIR, USER, EXPOSE
//
// `\` continues a line, `#` starts a comment. `$NAME`, `${NAME}`, `${NAME:-word}` and
// `${NAME:+word}` are expanded by `expandVars` (the builder knows the values: build args, ENV).
// Everything else is refused with its line number rather than skipped: an image built without a
// step it asked for would be wrong in silence.

export type Instruction =
  | { op: 'ARG'; line: number; vars: Array<[string, string | undefined]> }
  | { op: 'FROM'; line: number; image: string; name?: string }
  | { op: 'RUN'; line: number; argv: string[]; shell: boolean }
  | { op: 'COPY'; line: number; sources: string[]; dest: string; from?: string; chown?: string }
  | { op: 'ENV'; line: number; vars: Array<[string, string]> }
  | { op: 'WORKDIR'; line: number; dir: string }
  | { op: 'USER'; line: number; user: string }
  | { op: 'ENTRYPOINT' | 'CMD'; line: number; argv: string[] }
  | { op: 'LABEL'; line: number; labels: Array<[string, string]> }
  | { op: 'EXPOSE'; line: number; ports: string[] };

export type ArgInstruction = Extract<Instruction, { op: 'ARG' }>;
export type FromInstruction = Extract<Instruction, { op: 'FROM' }>;
export type StageStep = Exclude<Instruction, { op: 'FROM' }>;

/** One FROM and the steps after it, up to the next FROM. `from.name` is lowercase, as Docker's. */
export interface Stage {
  from: FromInstruction;
  steps: StageStep[];
}

export interface Dockerfile {
  /** The ARGs before the first FROM. */
  args: ArgInstruction[];
  stages: Stage[];
}

export class DockerfileError extends Error {
  override name = 'DockerfileError';
}

const SHELL = ['/bin/sh', '-c'];
const STAGE_NAME = /^[a-z][a-z0-9._-]*$/;
const COPY_FLAGS = ['from', 'chown'] as const;

export function parseDockerfile(text: string): Dockerfile {
  const out: Dockerfile = { args: [], stages: [] };
  for (const { line, op, rest } of logicalLines(text)) {
    const fail = (why: string) => new DockerfileError(`line ${line}: ${op}: ${why}`);
    if (!rest) throw fail('needs arguments');
    const step = parseInstruction(op, rest, line, fail);
    if (step.op === 'FROM') {
      out.stages.push({ from: checkStageName(step, out.stages, fail), steps: [] });
    } else if (out.stages.length) {
      out.stages.at(-1)!.steps.push(step);
    } else if (step.op === 'ARG') {
      out.args.push(step);
    } else {
      throw new DockerfileError(`line ${line}: the Dockerfile must begin with FROM (only ARG may come before it)`);
    }
  }
  if (!out.stages.length) throw new DockerfileError('the Dockerfile must begin with FROM');
  checkCopySources(out.stages);
  return out;
}

/** The instructions' lines: continuations joined, comments and blank lines dropped. */
function* logicalLines(text: string): Generator<{ line: number; op: string; rest: string }> {
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
    yield { line: start, op: m[1]!.toUpperCase(), rest: (m[2] ?? '').trim() };
  }
}

function parseInstruction(op: string, rest: string, line: number, fail: (why: string) => Error): Instruction {
  switch (op) {
    case 'ARG': {
      const vars = assignments(rest);
      if (!vars) throw fail('expected NAME or NAME=VALUE');
      return { op, line, vars };
    }
    case 'FROM':
      return parseFrom(rest, line, fail);
    case 'RUN': {
      if (rest.startsWith('--')) throw fail(`flags (${rest.split(/\s/)[0]}) are not supported`);
      const exec = jsonArray(rest);
      return exec ? { op, line, argv: exec, shell: false } : { op, line, argv: [...SHELL, rest], shell: true };
    }
    case 'CMD':
    case 'ENTRYPOINT':
      return { op, line, argv: jsonArray(rest) ?? [...SHELL, rest] };
    case 'COPY':
      return parseCopy(rest, line, fail);
    case 'ENV':
    case 'LABEL': {
      const pairs = keyValues(rest, op === 'ENV');
      if (!pairs) throw fail('expected NAME=VALUE pairs (or, for ENV, NAME VALUE)');
      return op === 'ENV' ? { op, line, vars: pairs } : { op, line, labels: pairs };
    }
    case 'WORKDIR':
      return { op, line, dir: rest };
    case 'USER':
      return { op, line, user: rest };
    case 'EXPOSE':
      return { op, line, ports: rest.split(/\s+/).map(withProtocol) };
    default:
      throw new DockerfileError(`line ${line}: ${op} is not supported by asb image build`);
  }
}

/** `FROM image [AS name]`. The image may hold `${ARG}`s: the builder expands them. */
function parseFrom(rest: string, line: number, fail: (why: string) => Error): FromInstruction {
  const words = rest.split(/\s+/);
  if (words.some((w) => w.startsWith('--'))) throw fail('flags (--platform) are not supported');
  if (words.length === 1) return { op: 'FROM', line, image: words[0]! };
  if (words.length !== 3 || words[1]!.toUpperCase() !== 'AS') throw fail('expected FROM image [AS name]');
  return { op: 'FROM', line, image: words[0]!, name: words[2]!.toLowerCase() };
}

/** A stage's name: Docker's form, and not one an earlier stage has. */
function checkStageName(from: FromInstruction, stages: Stage[], fail: (why: string) => Error): FromInstruction {
  if (from.name === undefined) return from;
  if (!STAGE_NAME.test(from.name)) throw fail(`"${from.name}" is not a stage name (a letter, then a-z 0-9 . _ -)`);
  const twin = stages.find((s) => s.from.name === from.name);
  if (twin) throw fail(`the stage name "${from.name}" is taken (line ${twin.from.line})`);
  return from;
}

/** `COPY [--from=X] [--chown=U[:G]] SRC... DEST`, the sources and destination also as a JSON array. */
function parseCopy(rest: string, line: number, fail: (why: string) => Error): Instruction {
  const flags: Partial<Record<(typeof COPY_FLAGS)[number], string>> = {};
  let text = rest;
  for (let m = /^--(\S*)\s*/.exec(text); m; m = /^--(\S*)\s*/.exec(text)) {
    const [, name, value] = /^([a-z-]+)=(.*)$/.exec(m[1]!) ?? [];
    if (!COPY_FLAGS.includes(name as never)) throw fail(`flags (--${m[1]}) are not supported`);
    if (!value) throw fail(`--${name} needs a value`);
    flags[name as (typeof COPY_FLAGS)[number]] = value;
    text = text.slice(m[0].length);
  }
  // Docker does not expand variables in --from: a name there is a stage's or an image's, as written.
  if (flags.from?.includes('$')) throw fail(`--from=${flags.from}: variables are not expanded in --from`);
  const words = jsonArray(text) ?? text.split(/\s+/).filter(Boolean);
  if (words.length < 2) throw fail('needs a source and a destination');
  if (words.some((w) => /[*?[]/.test(w))) throw fail('wildcards are not supported');
  return {
    op: 'COPY',
    line,
    sources: words.slice(0, -1),
    dest: words.at(-1)!,
    ...(flags.from !== undefined && { from: flags.from }),
    ...(flags.chown !== undefined && { chown: flags.chown }),
  };
}

/** A COPY --from names a stage before its own (by name or index), or else an image. */
function checkCopySources(stages: Stage[]): void {
  for (const [index, stage] of stages.entries()) {
    for (const step of stage.steps) {
      if (step.op !== 'COPY' || step.from === undefined) continue;
      const named = namedStage(stages, step.from);
      if (named !== undefined && named >= index) {
        const which = named === index ? 'this stage' : 'a later stage';
        throw new DockerfileError(
          `line ${step.line}: COPY: --from=${step.from} is ${which}: a stage copies only from those before it`,
        );
      }
    }
  }
}

/**
 * The stage before `before` that `ref` names: by its name (a FROM's image, expanded) or also by
 * its index (a COPY's --from); undefined when it names none (then it is an image).
 */
export function stageIndex(stages: Stage[], ref: string, before: number, { byIndex = true } = {}): number | undefined {
  if (!byIndex && /^\d+$/.test(ref)) return undefined;
  const index = namedStage(stages, ref);
  return index !== undefined && index < before ? index : undefined;
}

/** The stage a name or an index names (any index: a number is never an image's name). */
function namedStage(stages: Stage[], ref: string): number | undefined {
  if (/^\d+$/.test(ref)) return Number(ref);
  const index = stages.findIndex((s) => s.from.name === ref.toLowerCase());
  return index >= 0 ? index : undefined;
}

/**
 * Docker's variable expansion: `$NAME`, `${NAME}`, `${NAME:-word}` (word when NAME is unset or
 * empty), `${NAME:+word}` (word when it is set and not empty); an unset NAME is empty; `\$` is a
 * `$`. The words are expanded in turn.
 */
export function expandVars(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(
    /\\\$|\$\{(\w+)(?:(:[-+])([^}]*))?\}|\$(\w+)/g,
    (all, braced?: string, modifier?: string, word?: string, bare?: string) => {
      if (all === '\\$') return '$';
      const value = vars.get(braced ?? bare!) ?? '';
      if (modifier === ':-') return value || expandVars(word!, vars);
      if (modifier === ':+') return value && expandVars(word!, vars);
      return value;
    },
  );
}

/** An EXPOSE port as the image config keeps it: `8080` is `8080/tcp` (`$PORT` once expanded). */
export function withProtocol(port: string): string {
  return port.includes('/') || port.includes('$') ? port : `${port}/tcp`;
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
  const pairs = assignments(text);
  return pairs?.every((p): p is [string, string] => p[1] !== undefined) ? pairs : undefined;
}

/**
 * Words `NAME` or `NAME=VALUE`, the value "double quoted" (with \ escapes), 'single quoted', or
 * bare (\ escapes a space). Values as `expandVars` takes them: a `$` not to expand (one escaped,
 * or in single quotes) is given as `\$`.
 */
function assignments(text: string): Array<[string, string | undefined]> | undefined {
  const out: Array<[string, string | undefined]> = [];
  const re = /([^\s=]+)(?:=(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|((?:\\.|[^\s\\])*)))?(?:\s+|$)/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m || m[0] === '') return undefined;
    out.push([m[1]!, m[3] !== undefined ? m[3].replace(/\$/g, () => '\\$') : unescape(m[2] ?? m[4])]);
    at = re.lastIndex;
  }
  return out.length ? out : undefined;
}

/** A value's \ escapes undone, but for `\$`, left for `expandVars`. */
function unescape(raw: string | undefined): string | undefined {
  return raw?.replace(/\\(.)/g, (_, c: string) => (c === '$' ? '\\$' : c));
}
