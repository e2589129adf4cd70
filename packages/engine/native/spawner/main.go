// asb-spawner runs commands for the engine (runsc kill and delete, umount, cp, du...), so that
// starting one costs the engine's event loop a line of JSON instead of a fork of the Node.js
// process: node's spawn blocks the loop until the child has exec'd, 3-4 ms per command in the
// engine here, three per sandbox torn down, taken from whatever claim or command was running
// beside it. A small Go process forks in a fraction of that, off the loop. Go, not C like the
// other helpers: commands run concurrently, each with its own output, timeout and wait, which is
// what goroutines and os/exec are for.
//
// Protocol: one JSON request per line on stdin, one JSON reply per line on stdout, matched by id,
// in the order the commands end. At the end of stdin, the spawner waits for the commands in
// flight, answers them and exits: the engine is gone, their work is not.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

type request struct {
	ID        uint64   `json:"id"`
	Argv      []string `json:"argv"`
	Dir       string   `json:"dir,omitempty"`
	TimeoutMs int64    `json:"timeoutMs,omitempty"`
	// MaxBuffer bounds stdout and stderr each, as node's execFile does: past it the command is killed.
	MaxBuffer int `json:"maxBuffer,omitempty"`
	// Mount, instead of Argv: a mount made here by system calls (mount.go).
	Mount *mountRequest `json:"mount,omitempty"`
	// Detach, with Argv: a command that starts something and is not waited for (detach.go).
	Detach *detachRequest `json:"detach,omitempty"`
}

type reply struct {
	ID     uint64 `json:"id"`
	Code   *int   `json:"code"` // nil when a signal ended it, or it never started
	Signal string `json:"signal,omitempty"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Error  string `json:"error,omitempty"`  // it did not start
	Errno  string `json:"errno,omitempty"`  // ENOENT, EACCES... when it did not start
	Killed bool   `json:"killed,omitempty"` // by the spawner: past its timeout or its output cap
}

const defaultMaxBuffer = 1024 * 1024

// capped keeps the first max bytes and reports when more came.
type capped struct {
	mu   sync.Mutex
	buf  []byte
	max  int
	over func()
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - len(c.buf)
	if len(p) > room {
		c.buf = append(c.buf, p[:max(room, 0)]...)
		c.over()
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}

func run(req request) reply {
	out := reply{ID: req.ID}
	if len(req.Argv) == 0 {
		out.Error = "no command"
		return out
	}
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Dir = req.Dir
	limit := req.MaxBuffer
	if limit <= 0 {
		limit = defaultMaxBuffer
	}
	var once sync.Once
	kill := func() {
		once.Do(func() {
			out.Killed = true
			if cmd.Process != nil {
				_ = cmd.Process.Signal(syscall.SIGTERM) // execFile's killSignal
			}
		})
	}
	stdout := &capped{max: limit, over: func() { go kill() }}
	stderr := &capped{max: limit, over: func() { go kill() }}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		out.Error = err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			out.Errno = errnoName(errno)
		}
		return out
	}
	var timer *time.Timer
	if req.TimeoutMs > 0 {
		timer = time.AfterFunc(time.Duration(req.TimeoutMs)*time.Millisecond, kill)
	}
	_ = cmd.Wait()
	if timer != nil {
		timer.Stop()
	}
	once.Do(func() {}) // a kill that comes now has nothing left to kill
	out.Stdout, out.Stderr = stdout.String(), stderr.String()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		out.Signal = signalName(ws.Signal())
	} else {
		code := cmd.ProcessState.ExitCode()
		out.Code = &code
	}
	return out
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EACCES:
		return "EACCES"
	case syscall.ENOTDIR:
		return "ENOTDIR"
	case syscall.ENOEXEC:
		return "ENOEXEC"
	}
	return ""
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGABRT: "SIGABRT",
	syscall.SIGKILL: "SIGKILL", syscall.SIGSEGV: "SIGSEGV", syscall.SIGPIPE: "SIGPIPE", syscall.SIGTERM: "SIGTERM",
	syscall.SIGBUS: "SIGBUS", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2", syscall.SIGXCPU: "SIGXCPU",
}

func signalName(s syscall.Signal) string {
	if n, ok := signalNames[s]; ok {
		return n
	}
	return "SIG" + s.String()
}

func main() {
	var (
		mu       sync.Mutex
		enc      = json.NewEncoder(os.Stdout)
		inFlight sync.WaitGroup
	)
	answer := func(r reply) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(r)
	}
	in := bufio.NewReaderSize(os.Stdin, 64*1024)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var req request
			if jerr := json.Unmarshal(line, &req); jerr != nil {
				answer(reply{Error: "bad request: " + jerr.Error()})
			} else {
				inFlight.Add(1)
				go func() {
					defer inFlight.Done()
					if req.Mount != nil {
						answer(mount(req))
					} else if req.Detach != nil {
						answer(detach(req))
					} else {
						answer(run(req))
					}
				}()
			}
		}
		if err != nil { // the end of stdin: the engine is gone
			break
		}
	}
	inFlight.Wait()
}
