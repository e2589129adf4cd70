/*
 * asb-spawn: the agent's process spawner inside a local sandbox.
 *
 * Why: under gVisor (ptrace platform) fork() costs in proportion to the forking process's address
 * space. Node's spawn forks the whole agent (~15 ms a command); this small process forks in ~1 ms.
 * It is also the sandbox's PID 1 (`asb-spawn --init -- node agent ...`): it starts the agent as its
 * child and reaps every orphan, which node as PID 1 would leave as zombies (gVisor ignores
 * PR_SET_CHILD_SUBREAPER, so only PID 1 can do it). Requests then come on fd IN_FD of the agent's
 * side of two pipes, events go back on the other; the agent finds them in ASB_SPAWNER_FDS.
 *
 * Protocol on stdin (requests) and stdout (events); every frame is
 *   u32 length-of-rest (little endian) | u8 type | u32 id | payload
 * Requests:  1 SPAWN  payload: u32 argc, u32 envc, u8 flags (1: keep stdin open, 2: kill the
 *                     process group when the command exits, 4: a pseudo-terminal, see below),
 *                     [with flag 4: u16 cols, u16 rows,] then cwd, argv..., env... as
 *                     NUL-terminated strings (argv[0] is looked up in the env's PATH)
 *            2 STDIN  payload: bytes; an empty payload closes the command's stdin
 *            3 SIGNAL payload: u32 signal, sent to the command's process group
 *            4 PAUSE  stop reading the command's stdout/stderr (the agent's client reads slower
 *                     than the command writes: the pipe fills and the command blocks, instead of
 *                     the agent buffering without bound); 5 RESUME reads them again
 *            6 RESIZE payload: u16 cols, u16 rows: the terminal's new size (TIOCSWINSZ on its
 *                     master, which sends SIGWINCH to its foreground job); ignored without one
 * Events:    1 STARTED payload: u32 pid      5 FAILED payload: message (exec failed; no EXIT follows)
 *            2 STDOUT  payload: bytes        3 STDERR payload: bytes
 *            4 EXIT    payload: i32 exit code (>= 0) or -signal; sent once the command exited and
 *                      its stdout/stderr reached EOF, or 100 ms after it exited (a background child
 *                      may hold them open; they are then closed; not while paused)
 *
 * A pseudo-terminal (flag 4; sandboxd's Start with `pty`, which runs this program as a plain child
 * of its own, as upstream's creack/pty would): the command is a session leader (setsid) whose
 * controlling terminal is the slave of a new pty (posix_openpt, TIOCSCTTY), on its fds 0, 1 and 2;
 * the size is set before the exec when cols and rows are both non-zero (upstream leaves 0x0
 * otherwise). The master is read like a stdout pipe (all output comes as STDOUT; EIO once every
 * slave fd is closed is its EOF); STDIN writes to it, and STDIN's EOF closes it as upstream does:
 * the terminal hangs up (SIGHUP to the command).
 *
 * `asb-spawn --relay NAME` is another program in the same binary: an engine that restarted has
 * lost its socketpair to the agent, so it execs this into the running sandbox (`runsc exec`) with
 * a fresh socketpair as stdin/stdout. It connects to the agent's Linux abstract Unix socket NAME
 * (the agent listens on "asb-agent" besides fd 0) and copies bytes both ways, unchanged: stdin to
 * the socket, the socket to stdout. An EOF is passed on as a half-close (shutdown(SHUT_WR) of the
 * socket, of stdout when it is a socket, else close); it exits 0 once both ways are done, or 1
 * with a message on stderr when it cannot connect.
 *
 * `asb-spawn --exec-lane` serves the same protocol on stdin and stdout for the engine itself: the
 * engine execs it into a running sandbox (`runsc exec`, the container's user and capabilities)
 * with a socketpair as stdio, and starts foreground commands through it without the agent in the
 * way (engine workloads/exec-lane.ts; each layer a command crosses costs a few thread wake-ups
 * under gVisor). It first takes PID 1's resource limits (see take_init_limits).
 *
 * `asb-spawn --save-restore-hook` is another: gVisor runs it in the sandbox before a checkpoint
 * and after a restore (`runsc checkpoint --save-restore-exec-argv`), with the moment in
 * GVISOR_SAVE_RESTORE_AUTO_EXEC_MODE (save, restore or resume). It writes that word and a newline
 * to the Go agent's abstract socket "asb-agent-hook" and exits 0 once the agent answers "ok":
 * after a restore, it serves a new connection on the engine's socket (agent-go/engine_socket.go).
 * Anything else fails the checkpoint or the restore, as gVisor does with a hook that fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 1024
#define DRAIN_GRACE_MS 100

struct child {
  uint32_t id;
  pid_t pid;
  int in, out, err; /* our ends; -1 when closed */
  int exited, code, kill_group, paused, pty; /* pty: out is its master, in a dup of it */
  long long exited_at;
};

static struct child kids[MAX_CHILDREN];
static int nkids;
static int sigpipe_fds[2];
/* A pipe's read end whose write end is closed: the stdin of every command given none (at its end
 * at once, as a pipe of its own closed after the spawn was), without a pipe and two closes each. */
static int eof_fd = -1;
static int req_fd = 0, ev_fd = 1; /* where requests come from and events go */
static pid_t agent_pid = -1;      /* in --init mode: the agent; its exit ends the sandbox */
/* The sandbox's exit code when the agent died by a signal (AGENT_KILLED_EXIT_CODE in the engine). */
#define AGENT_KILLED_EXIT 97
static int agent_status;

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) { if (errno == EINTR) continue; exit(0); /* the agent is gone */ }
    p += w; n -= (size_t)w;
  }
}

static void emit(uint8_t type, uint32_t id, const void *data, uint32_t n) {
  uint8_t head[9];
  uint32_t len = 5 + n;
  memcpy(head, &len, 4); head[4] = type; memcpy(head + 5, &id, 4);
  if (n == 0) { write_all(ev_fd, head, 9); return; }
  /* One syscall per frame: each costs ~40 us under gVisor's ptrace platform. */
  struct iovec iov[2] = { { head, 9 }, { (void *)data, n } };
  ssize_t w;
  while ((w = writev(ev_fd, iov, 2)) < 0 && errno == EINTR) {}
  if (w < 0) exit(0); /* the agent is gone */
  if ((size_t)w < 9) { write_all(ev_fd, head + w, 9 - (size_t)w); write_all(ev_fd, data, n); }
  else if ((size_t)w < 9 + (size_t)n) write_all(ev_fd, (const char *)data + (w - 9), n - (size_t)(w - 9));
}

static void on_sigchld(int sig) { (void)sig; int e = errno; ssize_t r = write(sigpipe_fds[1], "x", 1); (void)r; errno = e; }

static struct child *find(uint32_t id) {
  for (int i = 0; i < nkids; i++) if (kids[i].id == id) return &kids[i];
  return NULL;
}

static void close_fd(int *fd) { if (*fd >= 0) { close(*fd); *fd = -1; } }

static void finish(int i) {
  struct child *c = &kids[i];
  /* A foreground command's leftovers (`cmd &`, a fork bomb) end with it. */
  if (c->kill_group) kill(-c->pid, SIGKILL);
  close_fd(&c->in); close_fd(&c->out); close_fd(&c->err);
  int32_t code = c->code;
  emit(4, c->id, &code, 4);
  kids[i] = kids[--nkids];
}

/* PATH lookup, done here and remembered: execvp tries each PATH entry with a failing execve,
 * which costs ~1 ms apiece under gVisor (`true` was 4 ms slower than `/bin/true`); access()
 * of a remembered hit costs ~0.07 ms. Returns argv0 itself when it holds a '/' or is not found
 * (the exec then fails with the usual error). */
#define PATH_CACHE 64
static struct { char *path_env, *name, *resolved; } path_cache[PATH_CACHE];
static int path_cache_next;

static const char *resolve_cmd(const char *argv0, char **envp, char *out, size_t outsz) {
  if (strchr(argv0, '/') || !*argv0) return argv0;
  const char *path = "/usr/local/bin:/usr/bin:/bin";
  for (char **e = envp; *e; e++) if (strncmp(*e, "PATH=", 5) == 0) { path = *e + 5; break; }
  /* Relative entries depend on the command's cwd, set only in the child: leave those to execvp. */
  if (*path != '/' || strstr(path, "::") || strstr(path, ":.") || path[strlen(path) - 1] == ':') return argv0;
  for (int i = 0; i < PATH_CACHE; i++) {
    if (path_cache[i].name && strcmp(path_cache[i].name, argv0) == 0 && strcmp(path_cache[i].path_env, path) == 0) {
      if (access(path_cache[i].resolved, X_OK) == 0) return path_cache[i].resolved;
      break; /* gone or changed: search again */
    }
  }
  for (const char *d = path; ; ) {
    const char *colon = strchr(d, ':');
    size_t dl = colon ? (size_t)(colon - d) : strlen(d);
    int w = snprintf(out, outsz, "%.*s/%s", (int)dl, d, argv0);
    if (w > 0 && (size_t)w < outsz && access(out, X_OK) == 0) {
      int slot = -1;
      for (int i = 0; i < PATH_CACHE; i++) if (path_cache[i].name && strcmp(path_cache[i].name, argv0) == 0 && strcmp(path_cache[i].path_env, path) == 0) slot = i;
      if (slot < 0) { slot = path_cache_next; path_cache_next = (path_cache_next + 1) % PATH_CACHE; }
      free(path_cache[slot].path_env); free(path_cache[slot].name); free(path_cache[slot].resolved);
      path_cache[slot].path_env = strdup(path); path_cache[slot].name = strdup(argv0); path_cache[slot].resolved = strdup(out);
      return path_cache[slot].resolved;
    }
    if (!colon) break;
    d = colon + 1;
  }
  return argv0;
}

/* Why a vforked child's exec failed: the child runs on this process's memory until it execs or
 * exits, and this process resumes only then, so the child leaves its errno here (as glibc's
 * posix_spawn does) instead of writing it down a pipe: a pipe, its closes and a read cost five
 * system calls a command, each a trap into gVisor. */
static volatile int exec_errno;

/* In a vforked child: leave the parent why the exec failed and end, touching nothing else of the
 * parent's (write_all would exit(), flushing the parent's stdio). */
static void child_fail(void) {
  exec_errno = errno ? errno : ENOEXEC;
  _exit(127);
}

/* execve of `file`, and of /bin/sh with it when it is a script without #! (ENOEXEC). */
static void child_exec(const char *file, char **argv, uint32_t argc, char **envp) {
  execve(file, argv, envp);
  if (errno != ENOEXEC) return;
  char *sh_argv[argc + 2];
  sh_argv[0] = "/bin/sh"; sh_argv[1] = (char *)file;
  for (uint32_t i = 1; i <= argc; i++) sh_argv[i + 1] = argv[i];
  execve("/bin/sh", sh_argv, envp);
  errno = ENOEXEC;
}

/* execvpe's rules in a vforked child, without execvpe: glibc's searches the PATH of this
 * process's environ, which the child shares with the parent (vfork), not the command's. Returns
 * (errno set) only when nothing could be run. Everything is on the stack. */
static void child_execvpe(const char *file, char **argv, uint32_t argc, char **envp) {
  if (strchr(file, '/')) { child_exec(file, argv, argc, envp); return; }
  const char *path = "/usr/local/bin:/usr/bin:/bin";
  for (char **e = envp; *e; e++) if (strncmp(*e, "PATH=", 5) == 0) { path = *e + 5; break; }
  int denied = 0;
  for (const char *d = path; ; ) {
    const char *colon = strchr(d, ':');
    size_t dl = colon ? (size_t)(colon - d) : strlen(d);
    char candidate[4096];
    /* An empty entry is the current directory, as for execvp. */
    int w = dl ? snprintf(candidate, sizeof candidate, "%.*s/%s", (int)dl, d, file) : snprintf(candidate, sizeof candidate, "%s", file);
    if (w > 0 && (size_t)w < sizeof candidate) {
      child_exec(dl ? candidate : file, argv, argc, envp);
      if (errno == EACCES) denied = 1;
      else if (errno != ENOENT && errno != ENOTDIR) return;
    }
    if (!colon) break;
    d = colon + 1;
  }
  errno = denied ? EACCES : ENOENT;
}

static void do_spawn(uint32_t id, const uint8_t *p, uint32_t n) {
  if (n < 9 || nkids >= MAX_CHILDREN) { const char *m = "bad spawn request"; emit(5, id, m, strlen(m)); return; }
  uint32_t argc, envc; memcpy(&argc, p, 4); memcpy(&envc, p + 4, 4);
  int keep_stdin = p[8] & 1, kill_group = (p[8] & 2) != 0, use_pty = (p[8] & 4) != 0;
  const char *s = (const char *)p + 9, *end = (const char *)p + n;
  struct winsize ws = { 0 };
  if (use_pty) {
    if (n < 13) { const char *m = "bad spawn request"; emit(5, id, m, strlen(m)); return; }
    memcpy(&ws.ws_col, p + 9, 2); memcpy(&ws.ws_row, p + 11, 2);
    s += 4;
  }
  if (argc == 0 || argc > 100000 || envc > 100000) { const char *m = "bad spawn request"; emit(5, id, m, strlen(m)); return; }
  char **argv = calloc(argc + 1, sizeof(char *)), **envp = calloc(envc + 1, sizeof(char *));
  const char *cwd = s; s += strnlen(s, end - s) + 1;
  for (uint32_t i = 0; i < argc && s < end; i++) { argv[i] = (char *)s; s += strnlen(s, end - s) + 1; }
  for (uint32_t i = 0; i < envc && s < end; i++) { envp[i] = (char *)s; s += strnlen(s, end - s) + 1; }
  char resolved_buf[4096];
  const char *file = resolve_cmd(argv[0], envp, resolved_buf, sizeof resolved_buf);
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
  if (use_pty) {
    /* The master stands for both pipes' far ends: in[1] and out[0] (a dup, so each closes alone);
     * the slave, opened here before the fork (as creack/pty does), is the child's 0, 1 and 2. */
    int master = -1, slave = -1;
    char name[128];
    const char *what = "posix_openpt";
    if ((master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 ||
        (what = "grantpt", grantpt(master)) || (what = "unlockpt", unlockpt(master)) ||
        (what = "ptsname", ptsname_r(master, name, sizeof name)) ||
        (what = "TIOCSWINSZ", ws.ws_col && ws.ws_row && ioctl(master, TIOCSWINSZ, &ws)) ||
        (what = "open pty", (slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) ||
        (what = "dup", (out[0] = fcntl(master, F_DUPFD_CLOEXEC, 0)) < 0)) {
      char m[128]; snprintf(m, sizeof m, "%s: %s", what, strerror(errno)); emit(5, id, m, strlen(m));
      if (master >= 0) close(master);
      if (slave >= 0) close(slave);
      if (out[0] >= 0) close(out[0]);
      free(argv); free(envp); return;
    }
    in[1] = master; in[0] = out[1] = err[1] = slave; err[0] = -1;
  } else if ((keep_stdin ? pipe2(in, O_CLOEXEC) : (in[0] = eof_fd, 0)) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
    char m[128]; snprintf(m, sizeof m, "pipe: %s", strerror(errno)); emit(5, id, m, strlen(m)); free(argv); free(envp); return;
  }
  /* vfork: under gVisor a fork copies the address space into a new one, ~5 ms more than a vfork
   * that borrows it until the exec (measured in a sandbox: 15 against 10 ms per /bin/true). The
   * child only makes system calls and touches nothing of ours until it execs or _exits. */
  exec_errno = 0;
  pid_t pid = vfork();
  if (pid == 0) {
    setsid();
    sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
    /* SIGCHLD's handler is undone by the exec; an ignored SIGPIPE would outlive it. */
    signal(SIGPIPE, SIG_DFL);
    /* The new session's controlling terminal: ^C on it signals the foreground job. */
    if (use_pty && ioctl(in[0], TIOCSCTTY, 0) != 0) child_fail();
    dup2(in[0], 0); dup2(out[1], 1); dup2(err[1], 2);
    if (chdir(cwd) != 0) child_fail();
    child_execvpe(file, argv, argc, envp);
    child_fail();
  }
  if (use_pty) close(in[0]); /* the slave: the child has its own copies */
  else {
    if (keep_stdin) close(in[0]); /* else it is eof_fd, kept for the next */
    close(out[1]); close(err[1]);
  }
  int e = exec_errno;
  if (pid < 0 || e != 0) {
    char m[512]; snprintf(m, sizeof m, "%s: %s", pid < 0 ? "fork" : argv[0], strerror(pid < 0 ? errno : e));
    emit(5, id, m, strlen(m));
    if (in[1] >= 0) close(in[1]);
    close(out[0]);
    if (err[0] >= 0) close(err[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    free(argv); free(envp); return;
  }
  struct child *c = &kids[nkids++];
  *c = (struct child){ .id = id, .pid = pid, .in = in[1], .out = out[0], .err = err[0], .exited = 0, .kill_group = kill_group, .pty = use_pty };
  if (!keep_stdin && !use_pty) c->in = -1;
  uint32_t upid = (uint32_t)pid;
  emit(1, id, &upid, 4);
  free(argv); free(envp);
}

static void reap(void) {
  int status; pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == agent_pid) { agent_status = status; agent_pid = 0; }
    for (int i = 0; i < nkids; i++) if (kids[i].pid == pid && !kids[i].exited) {
      kids[i].exited = 1; kids[i].exited_at = now_ms();
      kids[i].code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    /* pids that are not ours are orphans adopted as subreaper: reaped, nothing to report */
  }
}

/* Reads one frame from stdin into a growing buffer; returns 0 at EOF. */
static uint8_t *inbuf; static size_t inlen, incap;

static void handle_frames(void) {
  size_t off = 0;
  while (inlen - off >= 9) {
    uint32_t len; memcpy(&len, inbuf + off, 4);
    if (len < 5 || len > (64u << 20)) exit(2);
    if (inlen - off < 4 + (size_t)len) break;
    uint8_t type = inbuf[off + 4]; uint32_t id; memcpy(&id, inbuf + off + 5, 4);
    const uint8_t *p = inbuf + off + 9; uint32_t n = len - 5;
    struct child *c;
    if (type == 1) do_spawn(id, p, n);
    else if (type == 2 && (c = find(id)) && c->in >= 0) {
      /* A pty's EOF closes its master, both fds: the terminal hangs up. */
      if (n == 0) { close_fd(&c->in); if (c->pty) close_fd(&c->out); }
      else {
        /* A command that stopped reading its stdin must not block the spawner. */
        int fl = fcntl(c->in, F_GETFL); fcntl(c->in, F_SETFL, fl | O_NONBLOCK);
        const uint8_t *q = p; uint32_t left = n;
        while (left) { ssize_t w = write(c->in, q, left); if (w < 0) { if (errno == EINTR) continue; if (errno == EAGAIN) { struct pollfd pf = { c->in, POLLOUT, 0 }; if (poll(&pf, 1, 1000) <= 0) break; continue; } close_fd(&c->in); break; } q += w; left -= (uint32_t)w; }
      }
    } else if (type == 3 && (c = find(id)) && n >= 4) {
      uint32_t sig; memcpy(&sig, p, 4);
      if (kill(-c->pid, (int)sig) != 0) kill(c->pid, (int)sig);
    } else if (type == 6 && (c = find(id)) && c->pty && c->in >= 0 && n >= 4) {
      struct winsize ws = { 0 };
      memcpy(&ws.ws_col, p, 2); memcpy(&ws.ws_row, p + 2, 2);
      ioctl(c->in, TIOCSWINSZ, &ws);
    } else if ((type == 4 || type == 5) && (c = find(id))) {
      c->paused = type == 4;
      /* The drain grace starts again: output left in the pipes is read before the exit is sent. */
      if (!c->paused && c->exited) c->exited_at = now_ms();
    }
    off += 4 + len;
  }
  memmove(inbuf, inbuf + off, inlen - off); inlen -= off;
}

/* --init -- AGENT ARGV...: start the agent with two pipes to us as fds 3 (events in) and 4
 * (requests out), and serve it from here. */
static void start_agent(char **argv) {
  int req[2], ev[2];
  if (pipe(req) || pipe(ev)) exit(1);
  agent_pid = fork();
  if (agent_pid < 0) exit(1);
  if (agent_pid == 0) {
    dup2(ev[0], 3); dup2(req[1], 4);
    for (int fd = 5; fd < 1024; fd++) close(fd);
    setenv("ASB_SPAWNER_FDS", "3,4", 1);
    execv(argv[0], argv);
    perror("asb-spawn: exec agent");
    _exit(127);
  }
  close(ev[0]); close(req[1]);
  req_fd = req[0]; ev_fd = ev[1];
  fcntl(req_fd, F_SETFD, FD_CLOEXEC); fcntl(ev_fd, F_SETFD, FD_CLOEXEC);
  /* The socket on fd 0 (and the log on 1, 2) now belong to the agent alone. */
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) { dup2(devnull, 0); close(devnull); }
}

/* --relay NAME: see the header. Each way has a buffer: its source is polled for input only when
 * the buffer is empty, its destination for room only when it is not, so neither way waits on the
 * other (stdin, stdout and the socket are all non-blocking). */
struct way { int from, to; char buf[65536]; size_t len, off; int done; };

static void end_way(struct way *w) {
  w->done = 1;
  /* A socket takes a half-close and is still read by the other way; stdout that is a pipe can
   * only be closed. */
  if (shutdown(w->to, SHUT_WR) != 0 && w->to == 1) close(1);
}

/* A connected socket to the abstract Unix socket NAME, or -1 with a message on stderr. */
static int connect_abstract(const char *name, const char *what) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  size_t n = strlen(name);
  /* Abstract: sun_path starts with a NUL and the name is not NUL-terminated, its length is. */
  if (n == 0 || n + 1 > sizeof addr.sun_path) { fprintf(stderr, "asb-spawn: %s: bad socket name\n", what); return -1; }
  memcpy(addr.sun_path + 1, name, n);
  /* The address's length is part of an abstract name: node 20 (libuv 1.46) binds the whole
   * sun_path, padded with NULs; other binders use just the name. Try both. */
  socklen_t lens[2] = { sizeof addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n) };
  int s = -1;
  for (int i = 0; i < 2; i++) {
    if (s >= 0) close(s);
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s >= 0 && connect(s, (struct sockaddr *)&addr, lens[i]) == 0) return s;
  }
  fprintf(stderr, "asb-spawn: %s: connect to @%s: %s\n", what, name, strerror(errno));
  if (s >= 0) close(s);
  return -1;
}

static int relay(const char *name) {
  int s = connect_abstract(name, "--relay");
  if (s < 0) return 1;
  signal(SIGPIPE, SIG_IGN); /* a write to a reader that is gone fails with EPIPE instead */
  static struct way ways[2];
  ways[0].from = 0; ways[0].to = s;
  ways[1].from = s; ways[1].to = 1;
  int fds[3] = { 0, 1, s };
  for (int i = 0; i < 3; i++) fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
  while (!ways[0].done || !ways[1].done) {
    struct pollfd pf[2];
    for (int i = 0; i < 2; i++) {
      struct way *w = &ways[i];
      if (w->done) pf[i] = (struct pollfd){ -1, 0, 0 };
      else if (w->len > w->off) pf[i] = (struct pollfd){ w->to, POLLOUT, 0 };
      else pf[i] = (struct pollfd){ w->from, POLLIN, 0 };
    }
    if (poll(pf, 2, -1) < 0) { if (errno == EINTR) continue; return 1; }
    for (int i = 0; i < 2; i++) {
      struct way *w = &ways[i];
      if (w->done || !pf[i].revents) continue;
      if (w->len > w->off) {
        ssize_t r = write(w->to, w->buf + w->off, w->len - w->off);
        if (r > 0) w->off += (size_t)r;
        /* The reader is gone: what is left of this way is dropped. */
        else if (errno != EINTR && errno != EAGAIN) { end_way(w); continue; }
        if (w->off == w->len) w->off = w->len = 0;
      } else {
        ssize_t r = read(w->from, w->buf, sizeof w->buf);
        if (r > 0) w->len = (size_t)r;
        else if (r == 0 || (errno != EINTR && errno != EAGAIN)) end_way(w); /* EOF (or reset): pass it on */
      }
    }
  }
  return 0;
}

/* --save-restore-hook: see the header. */
static int save_restore_hook(void) {
  const char *mode = getenv("GVISOR_SAVE_RESTORE_AUTO_EXEC_MODE");
  if (!mode || !*mode) { fprintf(stderr, "asb-spawn: --save-restore-hook: GVISOR_SAVE_RESTORE_AUTO_EXEC_MODE is not set\n"); return 1; }
  int s = connect_abstract("asb-agent-hook", "--save-restore-hook");
  if (s < 0) return 1;
  char line[64];
  int n = snprintf(line, sizeof line, "%s\n", mode);
  if (n <= 0 || n >= (int)sizeof line || write(s, line, (size_t)n) != n) { fprintf(stderr, "asb-spawn: --save-restore-hook: write: %s\n", strerror(errno)); return 1; }
  char answer[512];
  size_t len = 0;
  for (;;) {
    ssize_t r = read(s, answer + len, sizeof answer - 1 - len);
    if (r > 0) { len += (size_t)r; if (len == sizeof answer - 1) break; continue; }
    if (r < 0 && errno == EINTR) continue;
    break;
  }
  answer[len] = 0;
  if (strncmp(answer, "ok\n", 3) == 0) return 0;
  fprintf(stderr, "asb-spawn: --save-restore-hook %s: the agent answered: %s\n", mode, len ? answer : "nothing");
  return 1;
}

/* --exec-lane [NPROC:NOFILE]: see the header. A process `runsc exec` starts has gVisor's default
 * resource limits, not the container's (the pids limit is RLIMIT_NPROC in there): it takes PID 1's,
 * every one that gVisor lets it read (it refuses some, RLIMIT_LOCKS among them) and that is not
 * looser than its own. The pids and open-files limits, which the engine sets, are required: given
 * on the command line (the engine reads them from the sandbox's spec: gVisor 20221219 lets no
 * process read another's limits), else PID 1's; without them it refuses to serve. */
static int take_init_limits(const char *given) {
  unsigned long long nproc = 0, nofile = 0;
  if (given && sscanf(given, "%llu:%llu", &nproc, &nofile) != 2) {
    fprintf(stderr, "asb-spawn: --exec-lane: expected NPROC:NOFILE, got \"%s\"\n", given);
    return -1;
  }
  for (int r = 0; r < RLIMIT_NLIMITS; r++) {
    struct rlimit lim;
    int required = r == RLIMIT_NPROC || r == RLIMIT_NOFILE;
    if (given && required) lim.rlim_cur = lim.rlim_max = r == RLIMIT_NPROC ? nproc : nofile;
    else if (prlimit(1, (enum __rlimit_resource)r, NULL, &lim) != 0) {
      if (!required) continue;
      fprintf(stderr, "asb-spawn: --exec-lane: resource limit %d of PID 1: %s\n", r, strerror(errno));
      return -1;
    }
    if (setrlimit((enum __rlimit_resource)r, &lim) == 0) continue;
    /* Refused (gVisor will not raise some): fine when this process is held as tightly already. */
    struct rlimit mine;
    if (!required && getrlimit((enum __rlimit_resource)r, &mine) == 0 && mine.rlim_cur <= lim.rlim_cur &&
        mine.rlim_max <= lim.rlim_max)
      continue;
    fprintf(stderr, "asb-spawn: --exec-lane: resource limit %d: %s\n", r, strerror(errno));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--relay") == 0) return relay(argv[2]);
  if (argc == 2 && strcmp(argv[1], "--save-restore-hook") == 0) return save_restore_hook();
  if ((argc == 2 || argc == 3) && strcmp(argv[1], "--exec-lane") == 0) {
    if (take_init_limits(argc == 3 ? argv[2] : NULL) != 0) return 1;
    /* The socket comes from node, non-blocking: a write while the engine is behind would fail
     * with EAGAIN, which write_all takes for the engine's end. Blocking, it waits instead (gVisor
     * keeps this flag per file description, the engine's end is unaffected). */
    for (int fd = 0; fd <= 1; fd++) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);
  if (argc > 3 && strcmp(argv[1], "--init") == 0 && strcmp(argv[2], "--") == 0) start_agent(argv + 3);
  if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK)) return 1;
  int eof_pipe[2];
  if (pipe2(eof_pipe, O_CLOEXEC)) return 1;
  close(eof_pipe[1]);
  eof_fd = eof_pipe[0];
  struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
  sigaction(SIGCHLD, &sa, NULL);
  incap = 1 << 16; inbuf = malloc(incap);
  static struct pollfd fds[2 + 2 * MAX_CHILDREN];
  static char buf[65536];
  for (;;) {
    int nf = 0;
    fds[nf++] = (struct pollfd){ req_fd, POLLIN, 0 };
    fds[nf++] = (struct pollfd){ sigpipe_fds[0], POLLIN, 0 };
    int timeout = -1;
    for (int i = 0; i < nkids; i++) {
      /* A negative fd is skipped by poll: a paused pipe's POLLHUP would otherwise spin the loop. */
      int paused = kids[i].paused;
      fds[nf++] = (struct pollfd){ paused ? -1 : kids[i].out, kids[i].out >= 0 ? POLLIN : 0, 0 };
      fds[nf++] = (struct pollfd){ paused ? -1 : kids[i].err, kids[i].err >= 0 ? POLLIN : 0, 0 };
      if (kids[i].exited && !kids[i].paused) { long long left = kids[i].exited_at + DRAIN_GRACE_MS - now_ms(); if (left < 0) left = 0; if (timeout < 0 || left < timeout) timeout = (int)left; }
    }
    if (poll(fds, nf, timeout) < 0 && errno != EINTR) return 1;
    if (fds[1].revents) { char d[64]; while (read(sigpipe_fds[0], d, sizeof d) > 0) {} reap(); }
    for (int i = 0, f = 2; i < nkids; i++, f += 2) {
      struct child *c = &kids[i];
      for (int k = 0; k < 2; k++) {
        int *fd = k == 0 ? &c->out : &c->err;
        if (*fd < 0 || c->paused || !(fds[f + k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t r = read(*fd, buf, sizeof buf);
        if (r > 0) emit(k == 0 ? 2 : 3, c->id, buf, (uint32_t)r);
        else if (r == 0 || (errno != EINTR && errno != EAGAIN)) close_fd(fd);
      }
    }
    reap();
    if (agent_pid == 0) {
      if (WIFEXITED(agent_status)) return WEXITSTATUS(agent_status);
      /* Not 128 + signal: 137 is what the engine sees when the host kills the whole sandbox at
       * its memory limit, and an agent killed from inside (its processes share its user) must
       * not be reported as that. */
      fprintf(stderr, "asb-spawn: the sandbox agent was killed by signal %d\n", WTERMSIG(agent_status));
      return AGENT_KILLED_EXIT;
    }
    for (int i = 0; i < nkids;) {
      struct child *c = &kids[i];
      if (c->exited && ((c->out < 0 && c->err < 0) || (!c->paused && now_ms() >= c->exited_at + DRAIN_GRACE_MS))) finish(i);
      else i++;
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      if (incap - inlen < 65536) { incap *= 2; inbuf = realloc(inbuf, incap); }
      ssize_t r = read(req_fd, inbuf + inlen, incap - inlen);
      if (r == 0) { if (agent_pid > 0) { close(req_fd); req_fd = -1; continue; } return 0; } /* the agent is gone */
      if (r > 0) { inlen += (size_t)r; handle_frames(); }
    }
  }
}
