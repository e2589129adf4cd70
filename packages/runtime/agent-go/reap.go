// One waiter for every child. The agent is the sandbox's PID 1 (nothing from the image runs
// before it), so every orphan in the sandbox becomes its child and must be reaped: a zombie holds
// a slot of the pids limit until then. A wait for any child would also take the exit statuses of
// the agent's own commands, so there is one waiter for all: it reaps whatever exited, hands a
// command's status to whoever started it, and drops the rest.
package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

type Reaper struct {
	// Starts hold it for reading, a reaping pass for writing: no child is reaped between its start
	// and the registration of its pid, so no status goes unclaimed.
	starting sync.RWMutex
	mu       sync.Mutex
	waiting  map[int]chan syscall.WaitStatus
}

// theReaper: one per process, whatever uses it (a second would take the first one's statuses).
var theReaper = sync.OnceValue(newReaper)

func newReaper() *Reaper {
	r := &Reaper{waiting: map[int]chan syscall.WaitStatus{}}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	go func() {
		for range sigs {
			r.reap()
		}
	}()
	return r
}

// Start runs start (which starts one child and returns its pid, or an error) and returns a
// channel that gets the child's status once it exits.
func (r *Reaper) Start(start func() (int, error)) (int, <-chan syscall.WaitStatus, error) {
	r.starting.RLock()
	defer r.starting.RUnlock()
	pid, err := start()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.mu.Lock()
	r.waiting[pid] = ch
	r.mu.Unlock()
	return pid, ch, nil
}

// reap collects every child that has exited. SIGCHLD is not queued: one signal may stand for
// many exits, so each pass waits until none is left.
func (r *Reaper) reap() {
	r.starting.Lock()
	defer r.starting.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		ch, ok := r.waiting[pid]
		delete(r.waiting, pid)
		r.mu.Unlock()
		if ok {
			ch <- ws
		}
	}
}
