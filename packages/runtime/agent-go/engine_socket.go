// The engine's socket (fd 0 in fd mode) across a gVisor checkpoint and restore.
//
// gVisor saves the sandbox with its stdio host sockets, and a restore puts the new `runsc
// restore`'s stdio behind the same fds. So the restored agent can answer the engine on the fd it
// always had, without the relay a `runsc exec` would cost, if two things hold: no HTTP/2 server
// from before the checkpoint reads the new engine's bytes, and a new one is served on the fd
// after the restore. gVisor runs a program in the sandbox around a checkpoint (`runsc checkpoint
// --save-restore-exec-argv`: `asb-spawn --save-restore-hook`), which tells the agent here: at the
// restore, the connection from before the checkpoint ends, then the agent writes restoredMarker
// and serves anew. The engine writes nothing before the marker. At the save, and at the resume of
// a sandbox checkpointed in place (`--leave-running`), the connection goes on: the engine that
// holds it is still there, and a request in flight finishes.
package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// hookSocketName: the abstract Unix socket the save/restore hook connects to.
const hookSocketName = "asb-agent-hook"

// restoredMarker precedes the HTTP/2 connection served after a restore (RESTORED_MARKER in the
// engine's drivers/gvisor.ts). The engine sends nothing until it has read it, so no server from
// before the checkpoint can read the new engine's bytes, and it skips whatever such a server
// wrote as it ended (a GOAWAY).
const restoredMarker = "\x00asb-agent: serving again\n"

// engineSocket serves HTTP/2 connections on an inherited socket fd, one at a time, which it
// keeps open between them (the fd is what gVisor re-points at a restore).
type engineSocket struct {
	fd    int
	serve func(net.Conn)
	logf  func(string)

	mu   sync.Mutex
	conn net.Conn
	done chan struct{}
}

// Serve starts serving a new connection on the fd, unless one is being served; `announce`
// writes restoredMarker on it first.
func (s *engineSocket) Serve(announce bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return nil
	}
	// A close-on-exec copy for the connection: closing it at the connection's end leaves the fd.
	dup, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(s.fd), syscall.F_DUPFD_CLOEXEC, 3)
	if errno != 0 {
		return errno
	}
	f := os.NewFile(dup, "engine-socket")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return err
	}
	if announce {
		if _, err := conn.Write([]byte(restoredMarker)); err != nil {
			conn.Close()
			return err
		}
	}
	done := make(chan struct{})
	s.conn, s.done = conn, done
	go func() {
		s.serve(conn)
		conn.Close()
		s.mu.Lock()
		if s.conn == conn {
			s.conn = nil
		}
		s.mu.Unlock()
		close(done)
		s.logf("engine connection closed")
	}()
	return nil
}

// Park ends the connection being served without reading another byte of it: its read times out
// at once, which ends the HTTP/2 server's connection.
func (s *engineSocket) Park() {
	s.mu.Lock()
	conn, done := s.conn, s.done
	s.mu.Unlock()
	if conn == nil {
		return
	}
	_ = conn.SetReadDeadline(time.Unix(1, 0))
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		conn.Close()
		<-done
	}
}

// listenHook answers the save/restore hook: "restore" serves a new connection, "save" and
// "resume" leave the one served as it is; "ok" when done. Only root may ask: gVisor runs the hook
// as root, and the sandbox's own processes run as its user, who must not take the engine's
// connection away.
func (s *engineSocket) listenHook() error {
	ln, err := net.Listen("unix", "@"+hookSocketName)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			go s.answerHook(c.(*net.UnixConn))
		}
	}()
	return nil
}

func (s *engineSocket) answerHook(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// The question first (a line, at most 64 bytes), then the answer: an asker that is refused
	// still reads why, instead of finding the socket closed under its write.
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	if uid, ok := peerUID(c); !ok || uid != 0 {
		_, _ = c.Write([]byte("error: only the save/restore hook (root) may ask\n"))
		return
	}
	mode := strings.TrimSpace(line)
	answer := "ok\n"
	switch mode {
	case "save", "resume":
		// A checkpoint in place: the engine keeps its connection through it. (Before one that
		// stops the sandbox, the engine has closed it already.)
	case "restore":
		// The connection served at the checkpoint is in the image, and may now read the new
		// engine's socket: it ends before a new one is served. (gVisor runs the save only on a
		// sandbox's first checkpoint, so nothing could end it earlier in every case.)
		s.Park()
		if err := s.Serve(true); err != nil {
			answer = "error: serving the engine's socket: " + err.Error() + "\n"
		}
	default:
		answer = "error: unknown mode " + mode + "\n"
	}
	s.logf("save/restore hook: " + mode + ": " + strings.TrimSpace(answer))
	_, _ = c.Write([]byte(answer))
}

func peerUID(c *net.UnixConn) (uint32, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return 0, false
	}
	return cred.Uid, true
}
