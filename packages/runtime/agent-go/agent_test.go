package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The cases of packages/runtime/test/confine.test.ts.
func TestConfiner(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(root, "app")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(base, "dir"), 0o755))
	must(os.Symlink(filepath.Join(base, "dir"), filepath.Join(base, "inner-link")))
	must(os.Symlink("/etc", filepath.Join(base, "etc-link")))
	must(os.Symlink(filepath.Join(root, "nowhere"), filepath.Join(base, "dangling-out")))
	must(os.Symlink(filepath.Join(base, "dir/new"), filepath.Join(base, "dangling-in")))
	must(os.Symlink("dangling-out", filepath.Join(base, "chain")))
	must(os.Symlink(filepath.Join(base, "loop-b"), filepath.Join(base, "loop-a")))
	must(os.Symlink(filepath.Join(base, "loop-a"), filepath.Join(base, "loop-b")))
	must(os.Symlink(root+"/app-sibling", filepath.Join(base, "prefix-trick")))
	c, err := NewConfiner(base)
	must(err)

	inside := [][2]string{
		{"", ""}, {".", ""}, {"a.txt", "a.txt"}, {"dir/../a.txt", "a.txt"}, {"new/deep/file", "new/deep/file"},
		{"inner-link/x", "dir/x"}, {"dangling-in", "dir/new"}, {"dangling-in/more", "dir/new/more"},
		{filepath.Join(base, "dir"), "dir"},
	}
	for _, tc := range inside {
		got, err := c.Resolve(tc[0])
		want := filepath.Join(base, tc[1])
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc[0], got, err, want)
		}
	}
	outside := []string{"..", "../app-sibling", "/etc/passwd", "/", "dir/../../x", "etc-link", "etc-link/passwd",
		"dangling-out", "dangling-out/sub/file", "chain", "prefix-trick", "a\x00b", "loop-a"}
	for _, p := range outside {
		_, err := c.Resolve(p)
		var ae *AgentError
		if !errors.As(err, &ae) || ae.Reason != "PathOutsideSandbox" || ae.Status() != 400 {
			t.Errorf("Resolve(%q) = %v; want PathOutsideSandbox", p, err)
		}
	}
}

func TestConfinerThroughSymlinkedBase(t *testing.T) {
	root, _ := filepath.EvalSymlinks(t.TempDir())
	real := filepath.Join(root, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	c, err := NewConfiner(link)
	if err != nil {
		t.Fatal(err)
	}
	// An absolute path under the base as configured is the same place as under its real path.
	if got, err := c.Resolve(filepath.Join(link, "x")); err != nil || got != filepath.Join(real, "x") {
		t.Errorf("got %q, %v", got, err)
	}
}

// The NDJSON lines, field for field as the node agent's JSON.stringify writes them.
func TestEventLines(t *testing.T) {
	code, sig := 137, "SIGKILL"
	cases := []struct {
		ev   Event
		want string
	}{
		{Event{Type: "start", Pid: 42}, `{"type":"start","pid":42}`},
		{Event{Type: "stdout", Data: "a<b>&\"\n\x00\u2028é"}, `{"type":"stdout","data":"a<b>&\"\n\u0000\u2028é"}`},
		{Event{Type: "stderr", Data: "AAE=", Base64: true}, `{"type":"stderr","data":"AAE=","encoding":"base64"}`},
		{Event{Type: "exit", ExitCode: &code, Signal: &sig, TimedOut: true, DurationMs: 5},
			`{"type":"exit","exitCode":137,"signal":"SIGKILL","timedOut":true,"durationMs":5}`},
		{Event{Type: "exit"}, `{"type":"exit","exitCode":null,"signal":null,"timedOut":false,"durationMs":0}`},
	}
	for _, tc := range cases {
		line := string(tc.ev.Line())
		if line != tc.want+"\n" {
			t.Errorf("got %s want %s", line, tc.want)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("%s: not JSON: %v", line, err)
		}
	}
	if n := (&Event{Type: "stdout", Data: "AAAA", Base64: true}).byteLength(); n != 3 {
		t.Errorf("base64 byteLength %d", n)
	}
}

// Node's StringDecoder: characters split across reads stay whole, invalid bytes are U+FFFD.
func TestUTF8Decoder(t *testing.T) {
	var d utf8Decoder
	euro := []byte("€") // e2 82 ac
	if s := d.Write(euro[:1]); s != "" {
		t.Errorf("partial: %q", s)
	}
	if s := d.Write(append(euro[1:], 'x')); s != "€x" {
		t.Errorf("joined: %q", s)
	}
	if s := d.Write([]byte{0xff, 0xfe, 0x00, 0xc3}); s != "\uFFFD\uFFFD\x00" {
		t.Errorf("invalid: %q", s)
	}
	if s := d.End(); s != "\uFFFD" {
		t.Errorf("end: %q", s)
	}
	// A maximal invalid subpart is one replacement: e2 82 then 'A'.
	if s := d.Write([]byte{0xe2, 0x82, 'A', 0xed, 0xa0, 0x80}); s != "\uFFFDA\uFFFD\uFFFD\uFFFD" {
		t.Errorf("subparts: %q", s)
	}
}

func TestDirectArgv(t *testing.T) {
	cases := map[string][]string{
		"python3 main.py":     {"python3", "main.py"},
		"  go test ./...  ":   {"go", "test", "./..."},
		"true":                {"true"},
		"echo hi":             {"echo", "hi"},
		"echo $HOME":          nil,
		"cd /tmp":             nil,
		"A=1 cmd":             nil,
		"ls | wc":             nil,
		"echo a\necho b":      nil,
		"cat 'x'":             nil,
		"ls *.go":             nil,
		"make -j2 CC=gcc all": {"make", "-j2", "CC=gcc", "all"},
	}
	for cmd, want := range cases {
		if got := directArgv(cmd); !reflect.DeepEqual(got, want) {
			t.Errorf("directArgv(%q) = %q, want %q", cmd, got, want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	a, err := parseArgs([]string{"--fd", "0", "--main", `["python3","-c","x"]`})
	if err != nil || a.Mode != "fd" || a.Fd != 0 || !reflect.DeepEqual(a.Main, []string{"python3", "-c", "x"}) {
		t.Fatalf("%+v %v", a, err)
	}
	if a, err := parseArgs(nil); err != nil || a.Mode != "listen" || a.Host != "0.0.0.0" || a.Port != 8888 {
		t.Fatalf("%+v %v", a, err)
	}
	if a, err := parseArgs([]string{"listen", "[::1]:0"}); err != nil || a.Host != "::1" || a.Port != 0 {
		t.Fatalf("%+v %v", a, err)
	}
	for _, bad := range [][]string{{"--fd"}, {"--fd", "x"}, {"--fd", "0", "--listen", ":1"}, {"--nope", "1"},
		{"--main", "[]"}, {"--main", "[1]"}, {"--main", "{"}, {"--listen", "host"}} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseExec(t *testing.T) {
	v, _ := parseJSONBody([]byte(`{"command":"true","timeoutMs":1.5}`))
	if _, err := parseExec(v); err == nil || !contains(err.Error(), "timeoutMs") {
		t.Errorf("int: %v", err)
	}
	v, _ = parseJSONBody([]byte(`[]`))
	if _, err := parseExecute(v); err == nil || err.Error() != "(body): Invalid input: expected object, received array" {
		t.Errorf("array: %v", err)
	}
	v, _ = parseJSONBody([]byte(`{"command":"x","timeout":0.25,"env":{"A":"1"},"cwd":"d"}`))
	req, err := parseExecute(v)
	if err != nil || req.Command != "x" || *req.TimeoutMs != 250 || req.Env["A"] != "1" || *req.Cwd != "d" {
		t.Errorf("%+v %v", req, err)
	}
	if _, err := parseJSONBody([]byte(`{"command": "echo`)); err == nil {
		t.Error("malformed JSON accepted")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
