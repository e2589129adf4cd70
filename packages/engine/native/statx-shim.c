/*
 * Compatibility shim preloaded into sandbox processes (LD_PRELOAD).
 *
 * Debian 12's runsc (gVisor release 20221219) rejects statx(2) with AT_NO_AUTOMOUNT as EINVAL,
 * and coreutils 9 passes that flag on every call: `ls`, `stat`, `cp -a` fail with "Invalid
 * argument". Automounts do not exist inside gVisor, so dropping the flag changes nothing else.
 * Programs that make the syscall themselves (Go, libuv) do not pass the flag and are unaffected.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct statx;

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
    return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}
