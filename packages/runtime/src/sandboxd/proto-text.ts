// The text of proto/process/v1/process.proto. Read from the repository when run from source; the
// bundle (scripts/build.mjs) replaces this module with the text itself, so dist/sandboxd.cjs is
// one file like the agent.
import { readFileSync } from 'node:fs';

export const PROCESS_PROTO: string = readFileSync(
  new URL('../../proto/process/v1/process.proto', import.meta.url),
  'utf8',
);
