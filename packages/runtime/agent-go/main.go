// asb-agent: the sandbox's runtime agent as one static binary (CGO_ENABLED=0): nothing from the
// sandbox's filesystem (no libc, loader or interpreter) is needed to run it. It serves the same
// wire protocol as the node agent (packages/runtime/src), so the engine and every API above it
// are unchanged. Command line (as packages/runtime/src/args.ts; dashes optional):
//
//	--fd N             serve HTTP/2 (prior knowledge) over the socket on fd N (the local engine),
//	                   and on the abstract Unix socket @asb-agent (an engine that restarted
//	                   re-attaches through `asb-spawn --relay asb-agent`); a sandbox restored
//	                   by gVisor is served on the same fd again (engine_socket.go)
//	--listen HOST:PORT serve HTTP/1.1 (the default, on 0.0.0.0:8888)
//	--main JSON        the sandbox's main process (a template container's command and args)
//
// The local engine starts it as the sandbox's PID 1 (`/.asb/asb-agent --fd 0`): it reaps every
// child, orphans included (reap.go), and forks its commands itself (procs.go).
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http2"
)

// agentSocketName: the Linux abstract Unix socket also served in fd mode (server.ts's
// AGENT_SOCKET_NAME).
const agentSocketName = "asb-agent"

type Config struct {
	BaseDir          string
	DefaultTimeoutMs float64
	MaxUploadBytes   int64
	MaxOutputBytes   int
}

// configFromEnv: the README's environment table. An unparsable number is the default.
func configFromEnv(getenv func(string) string) Config {
	num := func(v string, d float64) float64 {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if v == "" || err != nil || f <= 0 || f != f {
			return d
		}
		return f
	}
	base := getenv("SANDBOX_BASE_DIR")
	if base == "" {
		base = "/app"
	}
	return Config{
		BaseDir:          base,
		DefaultTimeoutMs: num(getenv("SANDBOX_EXEC_TIMEOUT_SECONDS"), 300) * 1000,
		MaxUploadBytes:   int64(num(getenv("ASB_MAX_UPLOAD_BYTES"), 256*MiB)),
		MaxOutputBytes:   int(num(getenv("ASB_MAX_OUTPUT_BYTES"), 16*MiB)),
	}
}

type Args struct {
	Mode   string // fd | listen
	Fd     int
	Host   string
	Port   int
	Main   []string
	Listen string
}

type usageError string

func (u usageError) Error() string { return string(u) }

var listenRe = regexp.MustCompile(`^(.*):(\d+)$`)

func parseArgs(words []string) (*Args, error) {
	opts := map[string]string{}
	for i := 0; i < len(words); i += 2 {
		name := strings.TrimPrefix(words[i], "--")
		if name != "fd" && name != "listen" && name != "main" {
			return nil, usageError(`unknown argument "` + words[i] + `" (expected --fd N, --listen HOST:PORT, --main JSON)`)
		}
		if i+1 >= len(words) {
			return nil, usageError("--" + name + " needs a value")
		}
		opts[name] = words[i+1]
	}
	a := &Args{}
	if m, ok := opts["main"]; ok {
		argv, msg := parseMainArgv(m)
		if msg != "" {
			return nil, usageError(msg)
		}
		a.Main = argv
	}
	if fd, ok := opts["fd"]; ok {
		if _, both := opts["listen"]; both {
			return nil, usageError("give --fd or --listen, not both")
		}
		n, err := strconv.Atoi(fd)
		if err != nil || n < 0 || strings.ContainsAny(fd, "+-") {
			return nil, usageError(`--fd must be a file descriptor number, got "` + fd + `"`)
		}
		a.Mode, a.Fd = "fd", n
		return a, nil
	}
	listen, ok := opts["listen"]
	if !ok {
		listen = "0.0.0.0:8888"
	}
	m := listenRe.FindStringSubmatch(listen)
	port, _ := strconv.Atoi(safeIndex(m, 2))
	if m == nil || port > 65535 {
		return nil, usageError(`--listen must be HOST:PORT, got "` + listen + `"`)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(m[1], "["), "]")
	if host == "" {
		host = "0.0.0.0"
	}
	a.Mode, a.Host, a.Port = "listen", host, port
	return a, nil
}

func safeIndex(m []string, i int) string {
	if i < len(m) {
		return m[i]
	}
	return ""
}

func newH2Server() *http2.Server {
	return &http2.Server{
		// One session carries every concurrent command, follower and file transfer.
		MaxConcurrentStreams:         10000,
		MaxUploadBufferPerConnection: 16 * MiB,
		MaxUploadBufferPerStream:     4 * MiB,
	}
}

func main() {
	t0 := time.Now()
	debug := os.Getenv("ASB_DEBUG") == "1"
	logf := func(msg string) {
		if debug {
			fmt.Fprintf(os.Stderr, "[agent-go +%dms] %s\n", time.Since(t0).Milliseconds(), msg)
		}
	}
	args, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent: %s\n", err)
		os.Exit(2)
	}
	// asb-spawn's fork protocol (ASB_SPAWNER_FDS), should the agent be started under it: not
	// used, the agent forks for itself; its pipes are closed, so that commands do not inherit
	// them and asb-spawn sees the EOF.
	if fds := os.Getenv("ASB_SPAWNER_FDS"); fds != "" {
		for _, f := range strings.Split(fds, ",") {
			if n, err := strconv.Atoi(f); err == nil && n > 2 {
				syscall.Close(n)
			}
		}
	}
	// A write to a closed stdout or stderr must not kill the agent (and SIGPIPE is not ignored,
	// which commands would inherit); SIGTERM ends it cleanly, as the node agent.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGPIPE, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM {
				os.Exit(0)
			}
		}
	}()
	cfg := configFromEnv(os.Getenv)
	confiner, err := NewConfiner(cfg.BaseDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent: the base directory %s: %s\n", cfg.BaseDir, err)
		os.Exit(1)
	}
	agent := &Agent{
		procs: NewProcessManager(confiner, cfg, baseEnv(os.Environ())),
		files: &FileService{confiner: confiner, maxUploadBytes: cfg.MaxUploadBytes},
		debug: logf,
	}
	var errLog *log.Logger
	if !debug {
		errLog = log.New(discard{}, "", 0)
	}
	startMain := func() {
		if args.Main == nil {
			return
		}
		if _, err := agent.procs.Start(ExecRequest{Command: strings.Join(args.Main, " "), Argv: args.Main}, "main"); err != nil {
			logf("main process: " + err.Error())
			return
		}
		logf("main process: " + strings.Join(args.Main, " "))
	}
	if args.Mode == "fd" {
		h2 := newH2Server()
		base := &http.Server{Handler: agent, ErrorLog: errLog}
		engine := &engineSocket{fd: args.Fd, logf: logf, serve: func(c net.Conn) {
			h2.ServeConn(c, &http2.ServeConnOpts{Handler: agent, BaseConfig: base})
		}}
		if err := engine.Serve(false); err != nil {
			fmt.Fprintf(os.Stderr, "agent: fd %d is not a socket: %s\n", args.Fd, err)
			os.Exit(2)
		}
		logf(fmt.Sprintf("serving HTTP/2 on fd %d", args.Fd))
		if err := engine.listenHook(); err != nil {
			logf("abstract socket @" + hookSocketName + ": " + err.Error())
		}
		// For an engine that restarts. After fd 0, so the first request does not wait for it;
		// before the main process, so that nothing in the sandbox can take the name first.
		if ln, err := net.Listen("unix", "@"+agentSocketName); err != nil {
			logf("abstract socket @" + agentSocketName + ": " + err.Error())
		} else {
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						logf("abstract socket @" + agentSocketName + ": " + err.Error())
						if ne, ok := err.(net.Error); ok && ne.Timeout() {
							continue
						}
						time.Sleep(100 * time.Millisecond)
						continue
					}
					go h2.ServeConn(c, &http2.ServeConnOpts{Handler: agent, BaseConfig: base})
				}
			}()
		}
		startMain()
		// The engine may go away (crash, restart): the sandbox's processes keep running.
		select {}
	}
	startMain()
	addr := net.JoinHostPort(args.Host, strconv.Itoa(args.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent: listen %s: %s\n", addr, err)
		os.Exit(1)
	}
	logf("serving HTTP/1.1 on " + ln.Addr().String())
	srv := &http.Server{Handler: agent, ErrorLog: errLog}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "agent: %s\n", err)
		os.Exit(1)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
