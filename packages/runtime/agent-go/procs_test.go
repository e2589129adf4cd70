package main

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func testManager(t *testing.T) *ProcessManager {
	t.Helper()
	c, err := NewConfiner(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return NewProcessManager(c, Config{DefaultTimeoutMs: 60000, MaxOutputBytes: 16 * MiB}, baseEnv(nil))
}

// Output written to stdout and stderr back to back reaches the client in that order: one reader
// waits on both pipes and reads stdout before stderr, as asb-spawn's loop does (a reader per pipe
// raced the other: e1 came before o1 in most runs).
//
// The command writes o_i then e_i, then waits (on stdin) until e_i has arrived: without that, a
// command running ahead of its reader has several lines in each pipe by the time they are read
// ("o1\no2\no3" in one chunk), which no reader of two pipes can order line by line.
func TestOutputOrderAcrossStreams(t *testing.T) {
	m := testManager(t)
	const n, runs = 200, 20
	want := make([]string, 0, 2*n)
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("o%d", i), fmt.Sprintf("e%d", i))
	}
	script := fmt.Sprintf(`for i in $(seq %d); do echo o$i; echo e$i >&2; read x; done`, n)
	bad := 0
	for run := 0; run < runs; run++ {
		var mu sync.Mutex
		var got []string
		var partial [2]string
		acks := make(chan struct{}, 2*n)
		p, err := m.Spawn(ExecRequest{Command: script, Argv: []string{"sh", "-c", script}},
			spawnOpts{id: fmt.Sprintf("order%d", run), background: true, sink: func(ev *Event) {
				i := 0
				switch ev.Type {
				case "stdout":
				case "stderr":
					i = 1
				default:
					return
				}
				mu.Lock()
				defer mu.Unlock()
				lines := strings.Split(partial[i]+ev.Data, "\n")
				partial[i] = lines[len(lines)-1]
				for _, l := range lines[:len(lines)-1] {
					got = append(got, l)
					if i == 1 {
						acks <- struct{}{}
					}
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				select {
				case <-acks:
					p.WriteStdin([]byte("\n"))
				case <-p.done:
					return
				}
			}
		}()
		<-p.done
		mu.Lock()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			bad++
			k := 0
			for k < len(got) && k < len(want) && got[k] == want[k] {
				k++
			}
			t.Errorf("run %d: %d lines, first out of order at %d: %q", run, len(got), k, got[max(0, k-2):min(len(got), k+3)])
		}
		mu.Unlock()
	}
	if bad > 0 {
		t.Errorf("%d of %d runs out of order", bad, runs)
	}
}

// A command that exits while something it started holds its pipes open is reported after the
// grace (the reader is woken and stops), with the output it wrote before.
func TestDrainGraceWithPipesHeldOpen(t *testing.T) {
	m := testManager(t)
	script := `sleep 30 & echo out; echo err >&2`
	var mu sync.Mutex
	var out string
	t0 := time.Now()
	p, err := m.Spawn(ExecRequest{Command: script}, spawnOpts{id: "grace", background: true, sink: func(ev *Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Type == "stdout" || ev.Type == "stderr" {
			out += ev.Type + ":" + ev.Data
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-p.Pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("no exit 5 s after the command ended")
	}
	if d := time.Since(t0); d < drainGrace {
		t.Errorf("exit after %v, before the grace", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if out != "stdout:out\nstderr:err\n" {
		t.Errorf("output %q", out)
	}
}
