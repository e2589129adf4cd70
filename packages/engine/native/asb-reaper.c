/*
 * asb-reaper: waits for one gVisor sandbox on the engine's behalf and exits as it did.
 *
 *   asb-reaper PIDFILE -- runsc ... run --detach --pid-file PIDFILE ... ID
 *
 * `runsc run` in the foreground is a Go process that does nothing but wait for its sandbox, and
 * costs ~5 MB of memory per sandbox for it. This one costs a few hundred kB: it becomes a child
 * subreaper, runs the command (which starts the sandbox and exits), so that the processes the
 * command leaves (the sandbox and its gofer) become its children, waits for the sandbox, and ends
 * as the sandbox process did: with its exit code (its init's status: 128 + n when the init died by
 * signal n), or killed by the same signal when the host killed it (the OOM killer at its memory
 * limit, most likely). Unlike `runsc run`, which exits 137 both when the host kills the sandbox
 * and when its init dies by SIGKILL, this tells the engine which happened. If the command fails,
 * the reaper exits with its status at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The reaper's own failures: above any sandbox's status (0..255 for a code, 128+64 at most). */
enum { REAPER_FAILED = 125 };

static int code_of(int status) {
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: asb-reaper PIDFILE -- COMMAND [ARG...]\n");
        return 2;
    }
    const char *pid_file = argv[1];
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("asb-reaper: PR_SET_CHILD_SUBREAPER");
        return REAPER_FAILED;
    }
    pid_t starter = fork();
    if (starter < 0) {
        perror("asb-reaper: fork");
        return REAPER_FAILED;
    }
    if (starter == 0) {
        execvp(argv[3], argv + 3);
        fprintf(stderr, "asb-reaper: %s: %s\n", argv[3], strerror(errno));
        _exit(127);
    }
    /* stdin and stdout (the engine's connection to the sandbox's agent) stay open here until the
     * sandbox's exit is reported, as under `runsc run`: the engine learns of a sandbox that died
     * from its exit, not from a connection reset that could come first. */
    int status;
    while (waitpid(starter, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("asb-reaper: waitpid");
            return REAPER_FAILED;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return code_of(status);

    long sandbox = -1;
    FILE *f = fopen(pid_file, "r");
    if (f) {
        if (fscanf(f, "%ld", &sandbox) != 1) sandbox = -1;
        fclose(f);
    }
    if (sandbox <= 0) {
        fprintf(stderr, "asb-reaper: no sandbox pid in %s\n", pid_file);
        return REAPER_FAILED;
    }
    /* The sandbox's exit is reported at once: the processes it leaves (its gofer, the stubs of
     * its platform) end by themselves when it is gone, as they did under `runsc run`, and are
     * left to init. Those already gone are reaped on the way. */
    int code = REAPER_FAILED;
    for (;;) {
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break; /* ECHILD: every process the command left is gone */
        }
        if (pid == sandbox) {
            int reaped;
            while (waitpid(-1, &reaped, WNOHANG) > 0) {
            }
            if (WIFSIGNALED(status)) {
                signal(WTERMSIG(status), SIG_DFL);
                kill(getpid(), WTERMSIG(status));
            }
            code = code_of(status);
            break;
        }
    }
    return code;
}
