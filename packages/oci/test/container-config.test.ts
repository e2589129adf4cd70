// The image's config and the container's spec, merged as Kubernetes merges them.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerConfigError, processConfig, type ImageConfig } from '../src/index.ts';

describe('container config', () => {
  const dirs: string[] = [];
  const rootfs = (passwd?: string, group?: string) => {
    const d = mkdtempSync(join(tmpdir(), 'asb-rootfs-'));
    dirs.push(d);
    mkdirSync(join(d, 'etc'));
    if (passwd !== undefined) writeFileSync(join(d, 'etc/passwd'), passwd);
    if (group !== undefined) writeFileSync(join(d, 'etc/group'), group);
    return d;
  };
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const image: ImageConfig = {
    config: { Entrypoint: ['/entry'], Cmd: ['--serve'], Env: ['PATH=/usr/bin', 'A=image'], WorkingDir: '/srv' },
  };

  it("command replaces Entrypoint and drops Cmd, args replace Cmd (Kubernetes' four cases)", () => {
    const root = rootfs();
    const argv = (spec: { command?: string[]; args?: string[] }) => processConfig(image, spec, root).argv;
    assert.deepEqual(argv({}), ['/entry', '--serve']);
    assert.deepEqual(argv({ args: ['--once'] }), ['/entry', '--once']);
    assert.deepEqual(argv({ command: ['/bin/sh'] }), ['/bin/sh']);
    assert.deepEqual(argv({ command: ['/bin/sh'], args: ['-c', 'true'] }), ['/bin/sh', '-c', 'true']);
    assert.deepEqual(processConfig({}, {}, root).argv, [], 'nothing to run');
  });

  it("env by name, the spec's last; workingDir, else the image's, else /", () => {
    const root = rootfs();
    const p = processConfig(
      image,
      {
        env: [
          { name: 'A', value: 'spec' },
          { name: 'B', value: '2' },
        ],
      },
      root,
    );
    assert.deepEqual(p.env, [
      ['PATH', '/usr/bin'],
      ['A', 'spec'],
      ['B', '2'],
      ['HOME', '/'],
    ]);
    assert.equal(p.cwd, '/srv');
    assert.equal(processConfig(image, { workingDir: '/app' }, root).cwd, '/app');
    assert.equal(processConfig({}, {}, root).cwd, '/');
  });

  it('completes the environment as containerd does: a PATH when the image sets none, HOME from passwd', () => {
    const root = rootfs('root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n');
    const env = (config: ImageConfig, spec = {}) => new Map(processConfig(config, spec, root).env);
    assert.equal(env({}).get('PATH'), '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    assert.equal(env({}).get('HOME'), '/root');
    assert.equal(env({ config: { User: 'app' } }).get('HOME'), '/home/app');
    assert.equal(env({ config: { User: '4242' } }).get('HOME'), '/', 'a uid without an entry');
    assert.equal(env({ config: { Env: ['HOME=/h'] } }).get('HOME'), '/h', "the image's own wins");
    assert.equal(env({}, { env: [{ name: 'PATH', value: '/x' }] }).get('PATH'), '/x');
  });

  it("the user: the image's by name or number, with its group; securityContext wins; runAsNonRoot", () => {
    const root = rootfs('root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n', 'root:x:0:\nstaff:x:50:\n');
    const user = (
      User: string | undefined,
      sc?: { runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean },
    ) => {
      const p = processConfig({ config: { User } }, { securityContext: sc }, root);
      return [p.uid, p.gid];
    };
    assert.deepEqual(user(undefined), [0, 0], 'root when the image says nothing');
    assert.deepEqual(user('app'), [1001, 1002]);
    assert.deepEqual(user('1001'), [1001, 1002], 'a uid in passwd gets its group');
    assert.deepEqual(user('4242'), [4242, 0], 'a uid not in passwd runs with gid 0, as runc does');
    assert.deepEqual(user('app:staff'), [1001, 50]);
    assert.deepEqual(user('app:7'), [1001, 7]);
    assert.deepEqual(user('app', { runAsUser: 0 }), [0, 0]);
    assert.deepEqual(user(undefined, { runAsUser: 1001, runAsGroup: 9 }), [1001, 9]);
    assert.throws(
      () => user('nobody-here'),
      (e: unknown) => e instanceof ContainerConfigError && /not in its \/etc\/passwd/.test(e.message),
    );
    assert.throws(() => user('app:nogroup'), /not in its \/etc\/group/);
    assert.throws(() => user(undefined, { runAsNonRoot: true }), /runAsNonRoot/);
    assert.deepEqual(user('app', { runAsNonRoot: true }), [1001, 1002]);
  });

  it("an image's /etc/passwd that is a link is not followed on the host", () => {
    const root = rootfs();
    const hostFile = join(dirs[0]!, 'host-passwd');
    writeFileSync(hostFile, 'app:x:1001:1002::/:/bin/sh\n');
    symlinkSync(hostFile, join(root, 'etc/passwd'));
    assert.throws(() => processConfig({ config: { User: 'app' } }, {}, root), /not in its \/etc\/passwd/);
  });
});
