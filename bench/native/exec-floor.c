// The least an exec service inside a sandbox must do, none of ours in it: for each byte read on
// stdin (a socket from the host), start /bin/true with its stdout and stderr on pipes (vfork and
// exec, as the leanest spawn), read both pipes to their end, wait for the exit, and answer with
// the byte. bench/gvisor-floor.ts times the round trip from the host under `runsc do`.
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int run_true(void) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return -1;
  char *argv[] = {"/bin/true", 0};
  pid_t pid = vfork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(argv[0], argv, environ);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  char buf[4096];
  for (int open = 2; open > 0;) {
    if (poll(fds, 2, -1) < 0) continue;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !fds[i].revents) continue;
      if (read(fds[i].fd, buf, sizeof buf) <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open--;
      }
    }
  }
  int status;
  return pid > 0 && waitpid(pid, &status, 0) == pid ? 0 : -1;
}

int main(void) {
  char c;
  while (read(0, &c, 1) == 1) {
    if (c == 'x' && run_true() != 0) return 1;
    if (write(1, &c, 1) != 1) return 1;
  }
  return 0;
}
