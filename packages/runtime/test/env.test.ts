import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { baseEnv } from '../src/processes.ts';
import { configFromEnv } from '../src/server.ts';

describe('baseEnv', () => {
  it('starts from PATH, HOME and LANG when the agent has none', () => {
    assert.deepEqual(baseEnv({}, '/home/sandbox'), {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: '/home/sandbox',
      LANG: 'C.UTF-8',
    });
  });
  it("keeps the template's environment and drops the agent's internals", () => {
    const env = baseEnv(
      {
        PATH: '/bin',
        LANG: 'de_DE.UTF-8',
        NODE_ENV: 'production',
        NODE_OPTIONS: '--max-old-space-size=512',
        PYTHONPATH: '/app',
        SANDBOX_BASE_DIR: '/app',
        SANDBOX_EXEC_TIMEOUT_SECONDS: '9',
        ASB_SPAWNER_FDS: '3,4',
        ASB_DEBUG: '1',
        NODE_CHANNEL_FD: '3',
        NODE_TEST_CONTEXT: 'child-v8',
        NODE_UNIQUE_ID: '1',
      },
      '/h',
    );
    assert.deepEqual(env, {
      PATH: '/bin',
      HOME: '/h',
      LANG: 'de_DE.UTF-8',
      NODE_ENV: 'production',
      NODE_OPTIONS: '--max-old-space-size=512',
      PYTHONPATH: '/app',
    });
  });
});

describe('configFromEnv', () => {
  it("has the README's defaults", () => {
    assert.deepEqual(configFromEnv({}), {
      baseDir: '/app',
      defaultTimeoutMs: 300_000,
      maxUploadBytes: 268435456,
      maxOutputBytes: 16777216,
    });
  });
  it('reads each variable, and takes the default for one that is not a positive number', () => {
    assert.deepEqual(
      configFromEnv({
        SANDBOX_BASE_DIR: '/w',
        SANDBOX_EXEC_TIMEOUT_SECONDS: '2.5',
        ASB_MAX_UPLOAD_BYTES: 'lots',
        ASB_MAX_OUTPUT_BYTES: '10',
      }),
      { baseDir: '/w', defaultTimeoutMs: 2500, maxUploadBytes: 268435456, maxOutputBytes: 10 },
    );
  });
});
