// The lifecycle suite (test/lifecycle/suite.ts) on the real local engine under gVisor: the seeds'
// YAML, warm pools serving claims, expiry, Retain, suspend/resume keeping files and volumes.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Sandbox, apply, Objects, NotFoundError, UnavailableError } from '@asb/sdk';
import type { Version } from '@asb/api';
import { startTestEngine, type TestEngine } from './harness.ts';
import { lifecycleCases, type Substrate } from '../lifecycle/suite.ts';

function localSubstrate(t: TestEngine): Substrate {
  const api = (version: Version = 'v1beta1') => new Objects({ ...t.conn, version });
  return {
    async apply(yaml) {
      return (await apply(yaml, t.conn)).map((a) => `${a.kind}/${a.name}`);
    },
    async get(kind, name, version) {
      try {
        return await api(version).get(kind, name);
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    },
    list: (kind) => api().list(kind),
    async patch(kind, name, version, patch) {
      await api(version).patch(kind, name, patch);
    },
    async delete(kind, ...names) {
      for (const n of names) await api().delete(kind, n);
    },
    events: (kind, name) => api().events(kind, name),
    async assertRunning(name) {
      const sb = await Sandbox.connect(name, t.conn);
      assert.equal((await sb.run('echo up')).stdout, 'up\n', `${name} runs commands`);
    },
    async workloadGone(name) {
      try {
        await (await Sandbox.connect(name, t.conn)).run('true');
        return false;
      } catch (err) {
        if (err instanceof NotFoundError || err instanceof UnavailableError) return true;
        throw err;
      }
    },
    local: {
      conn: t.conn,
      home: t.home,
      containers: () =>
        execFileSync('runsc', ['--root', join(t.home, 'runsc'), 'list', '--quiet'], { encoding: 'utf8' })
          .split('\n')
          .filter(Boolean),
    },
  };
}

describe('lifecycle on the local engine', () => {
  let t: TestEngine;
  let substrate: Substrate;
  before(async () => {
    t = await startTestEngine();
    substrate = localSubstrate(t);
  });
  after(async () => {
    await t?.stop();
  });
  lifecycleCases(() => substrate);
});
