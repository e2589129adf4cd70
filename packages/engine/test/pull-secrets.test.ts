// imagePullSecrets on one machine: files in $ASB_HOME/secrets/<namespace>/, a Docker config or
// a kubernetes.io/dockerconfigjson Secret; what cannot be used is said, and the rest is used.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pullSecrets } from '../src/pull-secrets.ts';

describe('image pull secrets', () => {
  const home = mkdtempSync(join(tmpdir(), 'asb-pull-secrets-'));
  after(() => rmSync(home, { recursive: true, force: true }));
  const dir = join(home, 'secrets', 'team');
  mkdirSync(dir, { recursive: true });
  const auth = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString('base64');
  writeFileSync(join(dir, 'plain.json'), JSON.stringify({ auths: { 'reg.example': { auth: auth('a', 'pw-a') } } }));
  writeFileSync(
    join(dir, 'secret.yaml'),
    `kind: Secret\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '${JSON.stringify({
      auths: {
        'reg.example': { username: 'b', password: 'pw-b' },
        'other.example': { username: 'c', password: 'pw-c' },
      },
    })}'\n`,
  );
  writeFileSync(join(dir, 'empty.yaml'), 'kind: Secret\ndata: {}\n');

  it('reads Docker configs and Secrets; the first secret that names a registry wins', () => {
    const { credentials, problems } = pullSecrets(home, 'team', [{ name: 'plain' }, { name: 'secret' }]);
    assert.deepEqual(problems, []);
    assert.deepEqual(credentials['reg.example'], { username: 'a', password: 'pw-a' });
    assert.deepEqual(credentials['other.example'], { username: 'c', password: 'pw-c' });
  });

  it('says which secrets it could not use, and uses the others', () => {
    const { credentials, problems } = pullSecrets(home, 'team', [
      { name: 'absent' },
      { name: '../../etc/passwd' },
      { name: 'empty' },
      { name: 'secret' },
    ]);
    assert.equal(problems.length, 3);
    assert.match(problems[0]!, /"absent": no .*absent\.json or \.yaml/);
    assert.match(problems[1]!, /not a Secret name/);
    assert.match(problems[2]!, /"empty": .*no \.dockerconfigjson/);
    assert.deepEqual(credentials['reg.example'], { username: 'b', password: 'pw-b' });
    assert.deepEqual(pullSecrets(home, 'other-namespace', [{ name: 'plain' }]).credentials, {}, 'per namespace');
  });
});
