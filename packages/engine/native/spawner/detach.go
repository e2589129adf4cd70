// The detach op: a command that starts something and would then only wait for it (`runsc exec`
// of the engine's exec lane), run with a Unix socket as its stdin and stdout and killed once it
// has written that what it started runs (its pid file): what it started lives on without it. Off
// the engine's event loop like every other command here (node's spawn blocks the loop until the
// child has exec'd, which took the engine ~300 ms once on a loaded machine).
package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

type detachRequest struct {
	// Socket: a path the engine listens on; the connection made to it is the command's stdin and
	// stdout (the engine's end is the one it accepts).
	Socket string `json:"socket"`
	// Log: the command's stderr, appended.
	Log string `json:"log"`
	// Until: a file the command writes once what it started runs.
	Until string `json:"until"`
}

const defaultDetachTimeout = 10 * time.Second

func detach(req request) reply {
	out := reply{ID: req.ID}
	d := req.Detach
	if len(req.Argv) == 0 || d.Socket == "" || d.Until == "" {
		out.Error = "detach needs argv, socket and until"
		return out
	}
	conn, err := net.Dial("unix", d.Socket)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	stdio, err := conn.(*net.UnixConn).File() // a blocking duplicate, for the child
	conn.Close()
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer stdio.Close()
	stderr, err := os.OpenFile(d.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer stderr.Close()
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio, stdio, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // not in the engine's process group
	if err := cmd.Start(); err != nil {
		out.Error = err.Error()
		return out
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	timeout := defaultDetachTimeout
	if req.TimeoutMs > 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(d.Until); err == nil && len(bytes.TrimSpace(b)) > 0 {
			_ = cmd.Process.Kill()
			<-exited
			code := 0
			out.Code = &code
			return out
		}
		select {
		case <-exited:
			out.Error = "it ended before " + d.Until + " was written"
			if cmd.ProcessState != nil {
				out.Error += " (exit " + strconv.Itoa(cmd.ProcessState.ExitCode()) + ")"
			}
			return out
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			out.Error = d.Until + " not written within " + timeout.String()
			out.Killed = true
			return out
		}
	}
}
