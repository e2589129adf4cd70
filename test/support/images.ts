// Images for the end-to-end tests of the engine's image support, made from this machine's own
// files (no registry outside is reachable): a static busybox, bash on its glibc, and a program
// with no shell at all.
import type { ImageSpec } from '../../packages/oci/test/support/registry.ts';

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

/** A static busybox with its applets, a passwd with a user `app`, and files of its own. */
export function busybox(config: ImageSpec['config']): ImageSpec {
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
