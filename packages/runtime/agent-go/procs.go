// Processes inside the sandbox, as packages/runtime/src/processes.ts runs them: each command is
// `bash -c` (or a direct exec, direct.go) in a session and process group of its own, so a timeout
// or a kill ends the whole tree. The agent forks them itself (Go's os.StartProcess is a
// vfork-style clone(CLONE_VM|CLONE_VFORK): no copy of the agent's memory, cheap under gVisor too);
// asb-spawn stays PID 1 to reap the orphans. A foreground command streams its events to the one
// caller that asked for it, with flow control; a background process keeps the last 1 MiB of its
// output for replay and can be followed, signalled and fed stdin.
package main

import (
	"encoding/base64"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// drainGrace: how long after its exit a command's output pipes are still read when something it
// left running holds them open (counted while its reader is not held back).
const drainGrace = 100 * time.Millisecond

const readChunk = 64 * 1024

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// internalEnv: the agent's configuration (ASB_*, SANDBOX_*) and node's plumbing, which commands
// must not see.
var internalEnv = regexp.MustCompile(`^(ASB_|SANDBOX_|NODE_CHANNEL_|NODE_UNIQUE_ID$|NODE_TEST_CONTEXT$)`)

var shellArgv = func() []string {
	if _, err := os.Stat("/bin/bash"); err == nil {
		return []string{"/bin/bash", "--norc", "--noprofile"}
	}
	return []string{"/bin/sh"}
}()

// Signal names as node reports them (os.constants.signals, first name of a number).
var signalNames = map[syscall.Signal]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP",
	20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

var signalNumbers = func() map[string]syscall.Signal {
	m := map[string]syscall.Signal{}
	for n, s := range signalNames {
		m[s] = n
	}
	return m
}()

// baseEnv: what every command's environment starts from: PATH, HOME and LANG (unless the agent
// has them), and the agent's own environment minus its internals.
func baseEnv(environ []string) map[string]string {
	home := os.Getenv("HOME")
	if home == "" {
		home = "/"
		if u, err := user.Current(); err == nil && u.HomeDir != "" {
			home = u.HomeDir
		}
	}
	out := map[string]string{"PATH": defaultPath, "HOME": home, "LANG": "C.UTF-8"}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && !internalEnv.MatchString(k) {
			out[k] = v
		}
	}
	return out
}

type ExecRequest struct {
	Command   string
	Env       map[string]string
	Cwd       *string
	TimeoutMs *int64
	Stdin     *string
	Base64    bool
	Argv      []string // the main process: a program run directly
}

type Proc struct {
	ID        string
	Command   string
	StartedAt time.Time
	pid       int

	mu        sync.Mutex
	running   bool
	exitCode  *int
	signal    *string
	timedOut  bool
	keepBytes int
	replay    []*Event
	replayLen int
	listeners map[int]func(*Event)
	nextL     int
	// sink: the one foreground reader; it may block (flow control), listeners may not.
	sink    func(*Event)
	emitMu  sync.Mutex
	started chan struct{}
	done    chan struct{}
	// held: the output reader is blocked in the sink right now (the command is held back by its
	// client).
	held  atomic.Int32
	stdin *stdinWriter
}

func (p *Proc) Pid() int { return p.pid }

func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// emit records an event and delivers it: to the replay, to followers, to the sink.
func (p *Proc) emit(ev *Event) {
	p.emitMu.Lock()
	defer p.emitMu.Unlock()
	p.mu.Lock()
	if p.keepBytes > 0 {
		// Whole events are dropped from the front: a replay never starts in the middle of a chunk.
		p.replay = append(p.replay, ev)
		p.replayLen += ev.byteLength()
		for p.replayLen > p.keepBytes && len(p.replay) > 1 {
			p.replayLen -= p.replay[0].byteLength()
			p.replay[0] = nil
			p.replay = p.replay[1:]
		}
	}
	ls := make([]func(*Event), 0, len(p.listeners))
	for _, l := range p.listeners {
		ls = append(ls, l)
	}
	if ev.Type == "exit" {
		p.running = false
		p.listeners = map[int]func(*Event){}
	}
	sink := p.sink
	p.mu.Unlock()
	if ev.Type == "start" || ev.Type == "exit" {
		select {
		case <-p.started:
		default:
			close(p.started)
		}
	}
	for _, l := range ls {
		l(ev)
	}
	if sink != nil {
		sink(ev)
	}
	if ev.Type == "exit" {
		close(p.done)
	}
}

// Subscribe replays what is kept, then (with follow, while running) delivers new events until
// the exit. push must not block. Returns the unsubscribe.
func (p *Proc) Subscribe(push func(*Event), follow bool) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range p.replay {
		push(ev)
	}
	if !follow || !p.running {
		return func() {}
	}
	id := p.nextL
	p.nextL++
	p.listeners[id] = push
	return func() {
		p.mu.Lock()
		delete(p.listeners, id)
		p.mu.Unlock()
	}
}

type ProcessInfo struct {
	ID        string  `json:"id"`
	Pid       int     `json:"pid"`
	Command   string  `json:"command"`
	Running   bool    `json:"running"`
	ExitCode  *int    `json:"exitCode"`
	Signal    *string `json:"signal"`
	StartedAt string  `json:"startedAt"`
}

func (p *Proc) Info() ProcessInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProcessInfo{p.ID, p.pid, p.Command, p.running, p.exitCode, p.signal,
		p.StartedAt.UTC().Format("2006-01-02T15:04:05.000Z")}
}

// Kill signals the whole process group (the process alone when the group is gone).
func (p *Proc) Kill(sig syscall.Signal) {
	if !p.Running() || p.pid <= 0 {
		return
	}
	if syscall.Kill(-p.pid, sig) != nil {
		_ = syscall.Kill(p.pid, sig)
	}
}

func (p *Proc) WriteStdin(b []byte) {
	if p.stdin != nil {
		p.stdin.write(b)
	}
}

func (p *Proc) EndStdin() {
	if p.stdin != nil {
		p.stdin.end()
	}
}

// stdinWriter feeds a command's stdin from a queue, so that a command that does not read it
// blocks nobody; a write to a command that closed it is dropped.
type stdinWriter struct {
	mu    sync.Mutex
	cond  *sync.Cond
	queue [][]byte
	eof   bool
}

func newStdinWriter(f *os.File) *stdinWriter {
	w := &stdinWriter{}
	w.cond = sync.NewCond(&w.mu)
	go func() {
		defer f.Close()
		for {
			w.mu.Lock()
			for len(w.queue) == 0 && !w.eof {
				w.cond.Wait()
			}
			if len(w.queue) == 0 {
				w.mu.Unlock()
				return
			}
			b := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			if _, err := f.Write(b); err != nil {
				w.mu.Lock()
				w.queue, w.eof = nil, true
				w.mu.Unlock()
				return
			}
		}
	}()
	return w
}

func (w *stdinWriter) write(b []byte) {
	w.mu.Lock()
	if !w.eof {
		w.queue = append(w.queue, append([]byte(nil), b...))
		w.cond.Signal()
	}
	w.mu.Unlock()
}

func (w *stdinWriter) end() {
	w.mu.Lock()
	w.eof = true
	w.cond.Signal()
	w.mu.Unlock()
}

type ProcessManager struct {
	confiner       *Confiner
	defaultTimeout time.Duration
	maxOutputBytes int
	replayBytes    int
	env            map[string]string
	reaper         *Reaper

	mu    sync.Mutex
	procs map[string]*Proc
	order []string
	seq   int
}

func NewProcessManager(c *Confiner, cfg Config, env map[string]string) *ProcessManager {
	return &ProcessManager{
		confiner:       c,
		defaultTimeout: time.Duration(cfg.DefaultTimeoutMs * float64(time.Millisecond)),
		maxOutputBytes: cfg.MaxOutputBytes,
		replayBytes:    1024 * 1024,
		env:            env,
		reaper:         theReaper(),
		procs:          map[string]*Proc{},
	}
}

// ExecContext: what the engine needs to start a foreground command as this agent would, without
// it (the engine's exec lane, packages/engine/src/workloads/exec-lane.ts): every command's base
// environment, the working directory, the shell for commands with shell syntax, the default
// timeout.
type ExecContext struct {
	Env              map[string]string `json:"env"`
	Cwd              string            `json:"cwd"`
	Shell            []string          `json:"shell"`
	DefaultTimeoutMs int64             `json:"defaultTimeoutMs"`
	MaxOutputBytes   int               `json:"maxOutputBytes"`
}

func (m *ProcessManager) ExecContext() ExecContext {
	return ExecContext{Env: m.env, Cwd: m.confiner.Base, Shell: shellArgv,
		DefaultTimeoutMs: m.defaultTimeout.Milliseconds(), MaxOutputBytes: m.maxOutputBytes}
}

// lookPath finds argv0 on the command's PATH, as execvp would.
func lookPath(name, path, cwd string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = cwd
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			if syscall.Access(p, 1) == nil {
				return p, nil
			}
		}
	}
	return "", &os.PathError{Op: "exec", Path: name, Err: syscall.ENOENT}
}

type spawnOpts struct {
	id         string
	background bool
	sink       func(*Event)
}

// Spawn starts a command; sink (when given) gets every event and may block to hold it back.
func (m *ProcessManager) Spawn(req ExecRequest, o spawnOpts) (*Proc, error) {
	cwd := m.confiner.Base
	if req.Cwd != nil {
		c, err := m.confiner.Resolve(*req.Cwd)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(c); err != nil {
			return nil, newError("NotFound", `working directory "`+*req.Cwd+`" does not exist`)
		}
		cwd = c
	}
	argv := req.Argv
	if argv == nil {
		argv = directArgv(req.Command)
	}
	if argv == nil {
		argv = append(append([]string{}, shellArgv...), "-c", req.Command)
	}
	env := make(map[string]string, len(m.env)+len(req.Env))
	for k, v := range m.env {
		env[k] = v
	}
	for k, v := range req.Env {
		env[k] = v
	}
	id := o.id
	m.mu.Lock()
	if id == "" {
		m.seq++
		id = "p" + strconv.Itoa(m.seq)
	}
	m.mu.Unlock()
	keep := 0
	if o.background {
		keep = m.replayBytes
	}
	p := &Proc{
		ID: id, Command: req.Command, StartedAt: time.Now(), pid: -1, running: true, keepBytes: keep,
		listeners: map[int]func(*Event){}, sink: o.sink, started: make(chan struct{}), done: make(chan struct{}),
	}
	var timeout time.Duration
	if req.TimeoutMs != nil {
		timeout = time.Duration(*req.TimeoutMs) * time.Millisecond
	} else if !o.background {
		timeout = m.defaultTimeout
	}
	if o.background {
		m.mu.Lock()
		if _, ok := m.procs[id]; !ok {
			m.order = append(m.order, id)
		}
		m.procs[id] = p
		m.mu.Unlock()
	}
	m.start(p, argv, env, cwd, req, timeout, !o.background, o.background || req.Stdin != nil)
	return p, nil
}

func (m *ProcessManager) start(p *Proc, argv []string, env map[string]string, cwd string, req ExecRequest,
	timeout time.Duration, killGroupOnExit, keepStdin bool) {
	t0 := time.Now()
	fail := func(err error) {
		msg := "Failed to execute command: " + err.Error() + "\n"
		if errors.Is(err, syscall.ENOENT) {
			first := ""
			if f := strings.Fields(req.Command); len(f) > 0 {
				first = f[0]
			}
			msg = "bash: line 1: " + first + ": command not found\n"
		}
		go func() {
			p.emit(&Event{Type: "stderr", Data: msg})
			code := 127
			p.mu.Lock()
			p.exitCode = &code
			p.mu.Unlock()
			p.emit(&Event{Type: "exit", ExitCode: &code, DurationMs: time.Since(t0).Milliseconds()})
		}()
	}
	envList := make([]string, 0, len(env))
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	file, err := lookPath(argv[0], env["PATH"], cwd)
	if err != nil {
		fail(err)
		return
	}
	// What is open so far, closed in reverse if a later step fails.
	var opened []func()
	undo := func(err error) {
		for i := len(opened) - 1; i >= 0; i-- {
			opened[i]()
		}
		fail(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		fail(err)
		return
	}
	opened = append(opened, func() { inR.Close() }, func() { inW.Close() })
	// The output pipes' read ends stay raw non-blocking fds, for the one reader that polls both.
	outR, outW, err := outputPipe()
	if err != nil {
		undo(err)
		return
	}
	opened = append(opened, func() { syscall.Close(outR) }, func() { outW.Close() })
	errR, errW, err := outputPipe()
	if err != nil {
		undo(err)
		return
	}
	opened = append(opened, func() { syscall.Close(errR) }, func() { errW.Close() })
	// wake interrupts the reader's poll: told to stop after the grace.
	var wake [2]int
	if err := syscall.Pipe2(wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		undo(err)
		return
	}
	// syscall's, not os's StartProcess: an os.Process holds a pidfd whose Release kept the child
	// from the reaper's wait (reap.go), which alone collects statuses here.
	attr := &syscall.ProcAttr{
		Dir:   cwd,
		Env:   envList,
		Files: []uintptr{inR.Fd(), outW.Fd(), errW.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	pid, exited, err := m.reaper.Start(func() (int, error) {
		pid, _, err := syscall.StartProcess(file, argv, attr)
		if errors.Is(err, syscall.ENOEXEC) {
			// A script without #!: execvp's rule, the shell runs it.
			pid, _, err = syscall.StartProcess("/bin/sh", append([]string{"/bin/sh", file}, argv[1:]...), attr)
		}
		if err != nil {
			return 0, &os.PathError{Op: "fork/exec", Path: file, Err: err}
		}
		return pid, nil
	})
	// The command's ends are the command's now (or nobody's).
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		syscall.Close(outR)
		syscall.Close(errR)
		syscall.Close(wake[0])
		syscall.Close(wake[1])
		fail(err)
		return
	}
	p.pid = pid
	if keepStdin {
		p.stdin = newStdinWriter(inW)
	} else {
		inW.Close()
	}
	p.emit(&Event{Type: "start", Pid: pid})
	if req.Stdin != nil {
		p.WriteStdin([]byte(*req.Stdin))
		p.EndStdin()
	}
	var timer *time.Timer
	if timeout > 0 {
		timer = time.AfterFunc(timeout, func() {
			p.mu.Lock()
			p.timedOut = true
			p.mu.Unlock()
			p.Kill(syscall.SIGKILL)
		})
	}
	var stop atomic.Bool
	readersDone := make(chan struct{})
	go func() {
		defer close(readersDone)
		p.read([2]int{outR, errR}, wake[0], &stop, req.Base64)
	}()
	go func() {
		ws := <-exited
		// Output left in the pipes is read before the exit is reported; what something the
		// command left running keeps open is closed after the grace, counted while not held back.
		grace := time.NewTimer(drainGrace)
	wait:
		for {
			select {
			case <-readersDone:
				break wait
			case <-grace.C:
				if p.held.Load() > 0 {
					grace.Reset(drainGrace)
					continue
				}
				stop.Store(true)
				_, _ = syscall.Write(wake[1], []byte{0})
				<-readersDone
				break wait
			}
		}
		grace.Stop()
		syscall.Close(wake[0])
		syscall.Close(wake[1])
		if timer != nil {
			timer.Stop()
		}
		var code int
		var sig *string
		if ws.Signaled() {
			name := signalNames[ws.Signal()]
			if name != "" {
				sig = &name
			}
			code = 128 + int(ws.Signal())
		} else {
			code = ws.ExitStatus()
		}
		p.mu.Lock()
		timedOut := p.timedOut
		if timedOut {
			code = 124
		}
		p.exitCode = &code
		p.signal = sig
		p.mu.Unlock()
		p.emit(&Event{Type: "exit", ExitCode: &code, Signal: sig, TimedOut: timedOut,
			DurationMs: time.Since(t0).Milliseconds()})
		// A foreground command's leftovers (`cmd &`, a fork bomb) die with it.
		if killGroupOnExit {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
}

// outputPipe: a pipe for a command's stdout or stderr; the command gets the (blocking) write end,
// the agent keeps the read end as a raw non-blocking fd.
func outputPipe() (int, *os.File, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return -1, nil, os.NewSyscallError("pipe2", err)
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return -1, nil, os.NewSyscallError("fcntl", err)
	}
	return fds[0], os.NewFile(uintptr(fds[1]), "|1"), nil
}

type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

const (
	pollIn  = 0x1
	pollErr = 0x8
	pollHup = 0x10
)

// poll waits, without a timeout, until one of fds is ready (ppoll: arm64 has no poll).
func poll(fds []pollFd) error {
	_, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// read turns the command's output pipes into events until both are at EOF, or until it is told
// to stop (stop set, a byte on wake) after the grace. One reader for both pipes, as asb-spawn's
// loop: on each wake-up stdout is read before stderr, so output written to both back to back
// reaches the client in that order. While an event is held back by its sink (the client does not
// read) neither pipe is read, the pipes fill and the command blocks.
func (p *Proc) read(fds [2]int, wake int, stop *atomic.Bool, b64 bool) {
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				syscall.Close(fd)
			}
		}
	}()
	types := [2]string{"stdout", "stderr"}
	var decs [2]utf8Decoder
	buf := make([]byte, readChunk)
	pfds := make([]pollFd, 3)
	for (fds[0] >= 0 || fds[1] >= 0) && !stop.Load() {
		for i, fd := range fds {
			// A negative fd is skipped by poll (a pipe at EOF would report POLLHUP forever).
			pfds[i] = pollFd{fd: int32(fd), events: pollIn}
		}
		pfds[2] = pollFd{fd: int32(wake), events: pollIn}
		if err := poll(pfds); err != nil {
			if err == syscall.EINTR || err == syscall.EAGAIN {
				continue
			}
			break
		}
		for i, fd := range fds {
			if fd < 0 || pfds[i].revents&(pollIn|pollHup|pollErr) == 0 {
				continue
			}
			n, err := syscall.Read(fd, buf)
			if n > 0 {
				if b64 {
					p.emit(&Event{Type: types[i], Data: base64.StdEncoding.EncodeToString(buf[:n]), Base64: true})
				} else if s := decs[i].Write(buf[:n]); s != "" {
					p.emit(&Event{Type: types[i], Data: s})
				}
			} else if n == 0 || (err != syscall.EINTR && err != syscall.EAGAIN) {
				syscall.Close(fd)
				fds[i] = -1
			}
		}
	}
	if !b64 {
		for i := range decs {
			if s := decs[i].End(); s != "" {
				p.emit(&Event{Type: types[i], Data: s})
			}
		}
	}
}

type ExecuteResponse struct {
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	ExitCode  int    `json:"exit_code"`
	Truncated bool   `json:"truncated,omitempty"`
	TimedOut  bool   `json:"timed_out,omitempty"`
}

// RunBuffered runs to completion and buffers the output (upstream's /execute), each stream up to
// maxOutputBytes: the rest is dropped and `truncated` set.
func (m *ProcessManager) RunBuffered(req ExecRequest) (*ExecuteResponse, error) {
	max := m.maxOutputBytes
	var out [2][]byte
	truncated := false
	var mu sync.Mutex
	p, err := m.Spawn(req, spawnOpts{sink: func(ev *Event) {
		if ev.Type != "stdout" && ev.Type != "stderr" {
			return
		}
		i := 0
		if ev.Type == "stderr" {
			i = 1
		}
		var b []byte
		if ev.Base64 {
			b, _ = base64.StdEncoding.DecodeString(ev.Data)
		} else {
			b = []byte(ev.Data)
		}
		mu.Lock()
		defer mu.Unlock()
		room := max - len(out[i])
		if room <= 0 {
			truncated = true
			return
		}
		if len(b) > room {
			truncated = true
			b = b[:room]
		}
		out[i] = append(out[i], b...)
	}})
	if err != nil {
		return nil, err
	}
	<-p.done
	mu.Lock()
	defer mu.Unlock()
	text := func(b []byte) string {
		var d utf8Decoder
		return d.Write(b) + d.End()
	}
	stderr := text(out[1])
	p.mu.Lock()
	timedOut := p.timedOut
	code := 1
	if p.exitCode != nil {
		code = *p.exitCode
	}
	p.mu.Unlock()
	if timedOut {
		ms := int64(m.defaultTimeout / time.Millisecond)
		if req.TimeoutMs != nil {
			ms = *req.TimeoutMs
		}
		stderr += "\nCommand timed out after " + strconv.FormatInt(ms, 10) + " ms and was killed.\n"
	}
	return &ExecuteResponse{Stdout: text(out[0]), Stderr: stderr, ExitCode: code, Truncated: truncated, TimedOut: timedOut}, nil
}

// Start runs a background process, listed and addressable by id until deleted.
func (m *ProcessManager) Start(req ExecRequest, id string) (*Proc, error) {
	if id != "" {
		m.mu.Lock()
		old := m.procs[id]
		m.mu.Unlock()
		if old != nil && old.Running() {
			return nil, newError("Conflict", `process "`+id+`" is already running`)
		}
	}
	return m.Spawn(req, spawnOpts{id: id, background: true})
}

func (m *ProcessManager) Get(id string) (*Proc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.procs[id]
	if p == nil {
		return nil, newError("NotFound", `no process "`+id+`"; GET /v1/processes lists them`)
	}
	return p, nil
}

func (m *ProcessManager) List() []ProcessInfo {
	m.mu.Lock()
	ps := make([]*Proc, 0, len(m.order))
	for _, id := range m.order {
		ps = append(ps, m.procs[id])
	}
	m.mu.Unlock()
	out := make([]ProcessInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Info())
	}
	return out
}

// Remove kills the process group and forgets the process.
func (m *ProcessManager) Remove(id string) error {
	p, err := m.Get(id)
	if err != nil {
		return err
	}
	p.Kill(syscall.SIGKILL)
	m.mu.Lock()
	delete(m.procs, id)
	for i, o := range m.order {
		if o == id {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
	m.mu.Unlock()
	return nil
}
