// A command with no shell syntax at all (`python3 main.py`, `go test ./...`, `true`) runs without
// a shell: under gVisor starting bash costs ~8 ms on top of the command itself. Anything a shell
// would interpret (quotes, $, globs, redirections, ;, &&, |, ~, assignments, builtins that act on
// the shell) keeps `bash -c`, so the result is the same either way.

const PLAIN_WORD = /^[A-Za-z0-9_@%+,./:-][A-Za-z0-9_@%+,./:=-]*$/;

/** Builtins whose program of the same name (coreutils) behaves the same for plain words. */
const SAME_AS_PROGRAM = new Set(['true', 'false', 'echo', 'printf', 'test']);

/** Shell builtins and keywords: these need the shell (they act on it, or exist only in it). */
const SHELL_ONLY = new Set([
  'alias',
  'bg',
  'bind',
  'break',
  'builtin',
  'caller',
  'case',
  'cd',
  'command',
  'compgen',
  'complete',
  'compopt',
  'continue',
  'coproc',
  'declare',
  'dirs',
  'disown',
  'do',
  'done',
  'elif',
  'else',
  'enable',
  'esac',
  'eval',
  'exec',
  'exit',
  'export',
  'fc',
  'fg',
  'fi',
  'for',
  'function',
  'getopts',
  'hash',
  'help',
  'history',
  'if',
  'in',
  'jobs',
  'kill',
  'let',
  'local',
  'logout',
  'mapfile',
  'popd',
  'pushd',
  'pwd',
  'read',
  'readarray',
  'readonly',
  'return',
  'select',
  'set',
  'shift',
  'shopt',
  'source',
  'suspend',
  'then',
  'time',
  'times',
  'trap',
  'type',
  'typeset',
  'ulimit',
  'umask',
  'unalias',
  'unset',
  'until',
  'wait',
  'while',
  '.',
  ':',
  '[',
  '[[',
  ']]',
  '{',
  '}',
  '!',
]);

/** The argv to exec directly, or undefined when the command needs a shell. */
export function directArgv(command: string): string[] | undefined {
  const words = command.trim().split(/[ \t]+/);
  if (words.length === 0 || words.length > 256 || command.includes('\n')) return undefined;
  if (!words.every((w) => PLAIN_WORD.test(w))) return undefined;
  const first = words[0]!;
  if (first.includes('=')) return undefined; // VAR=value cmd
  if (SHELL_ONLY.has(first) && !SAME_AS_PROGRAM.has(first)) return undefined;
  return words;
}
