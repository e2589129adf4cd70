// Images for the end-to-end tests of the engine's image support, made on this machine (no
// registry outside is reachable): a static busybox, bash on its glibc, a program with no shell
// at all, a real Debian bookworm (debootstrap from Debian's packages), and a program on musl.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ImageSpec } from '../../packages/oci/test/support/registry.ts';
export { debianRootfs } from '../../scripts/lib/debian-rootfs.ts';

const run = promisify(execFile);

const APPLETS = [
  'sh',
  'true',
  'false',
  'cat',
  'echo',
  'id',
  'ls',
  'env',
  'pwd',
  'sleep',
  'touch',
  'test',
  'uname',
  'mkdir',
  'rm',
  'ps',
  'wget',
];

/** A static busybox with its applets, a passwd with a user `app`, and files of its own; `more`:
 *  applets beyond the usual ones, and files, in a layer of their own. */
export function busybox(
  config: ImageSpec['config'],
  more?: { applets?: string[]; files?: Record<string, string> },
): ImageSpec {
  const extra = more && {
    files: more.files ?? {},
    symlinks: Object.fromEntries((more.applets ?? []).map((a) => [`bin/${a}`, 'busybox'])),
  };
  return {
    layers: [
      { fromHost: ['bin/busybox'] },
      {
        files: {
          'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/home/app:/bin/sh\n',
          'etc/group': 'root:x:0:\napp:x:1001:\n',
          'etc/os-release': 'ID=asb-test-busybox\n',
          'srv/app/hello.txt': 'hello from the image\n',
          'home/app/.keep': '',
          'root/.keep': '',
        },
        symlinks: Object.fromEntries(APPLETS.map((a) => [`bin/${a}`, 'busybox'])),
      },
      ...(extra ? [extra] : []),
    ],
    config,
  };
}

/** bash and cat with the glibc they link, taken from this machine (Debian, merged /usr). */
export const glibc: ImageSpec = {
  layers: [
    {
      fromHost: [
        'usr/bin/bash',
        'usr/bin/cat',
        'usr/lib/x86_64-linux-gnu/libc.so.6',
        'usr/lib/x86_64-linux-gnu/libtinfo.so.6',
        'usr/lib/x86_64-linux-gnu/libtinfo.so.6.4',
        'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
      ],
    },
    {
      files: { 'etc/os-release': 'ID=asb-test-glibc\n' },
      symlinks: {
        bin: 'usr/bin',
        lib: 'usr/lib',
        lib64: 'usr/lib64',
        'usr/lib64/ld-linux-x86-64.so.2': '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
      },
    },
  ],
  config: { Env: ['PATH=/usr/bin:/bin'] },
};

/** One static program and nothing else: no shell, no /etc. */
export const noShell: ImageSpec = { layers: [{ fromHost: ['bin/busybox'] }], config: { Env: ['PATH=/bin'] } };

/** A Debian image: the rootfs above as one zstd layer (as Docker Hub's images are, one layer). */
export function debian(rootfs: string, config: ImageSpec['config'] = {}): ImageSpec {
  return {
    layers: [{ fromDir: rootfs, compression: 'zstd' }],
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'], ...config },
  };
}

/**
 * A musl image, as Alpine's are: a program linked dynamically against musl (musl-gcc) with musl's
 * loader and libc, and a static busybox for its shell; no glibc anywhere. Undefined without
 * musl-gcc.
 */
export async function musl(): Promise<ImageSpec | { skip: string }> {
  const gcc = ['/usr/bin/musl-gcc'].find((p) => existsSync(p));
  if (!gcc) return { skip: 'no musl-gcc (apt-get install musl-tools)' };
  const dir = mkdtempSync(join(tmpdir(), 'asb-musl-'));
  try {
    writeFileSync(join(dir, 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello from musl"); return 0; }\n');
    await run(gcc, ['-O2', '-o', join(dir, 'hello'), join(dir, 'hello.c')]);
    const hello = readFileSync(join(dir, 'hello'));
    return {
      layers: [
        { fromHost: ['bin/busybox', 'usr/lib/x86_64-linux-musl/libc.so'] },
        {
          files: { 'usr/bin/hello': hello, 'etc/os-release': 'ID=asb-test-musl\n' },
          modes: { 'usr/bin/hello': 0o755 },
          symlinks: {
            'lib/ld-musl-x86_64.so.1': '/usr/lib/x86_64-linux-musl/libc.so',
            ...Object.fromEntries(APPLETS.map((a) => [`bin/${a}`, 'busybox'])),
          },
        },
      ],
      config: { Env: ['PATH=/usr/bin:/bin'] },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
