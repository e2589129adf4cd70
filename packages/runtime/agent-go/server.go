// The agent's HTTP routes, those of packages/runtime/src/app.ts with the same shapes, statuses,
// error bodies, headers and NDJSON streaming: upstream's runtime API and our /v1 extensions.
// Routed on the path as the client sent it: `/v1/files/%2e%2e/etc/passwd` reaches its file
// route and is refused there by the Confiner, as upstream does.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unicode/utf8"
)

// multipartOverhead: room for multipart boundaries and part headers around an upload's bytes.
const multipartOverhead = 64 * 1024

// highWaterEvents: events queued for a foreground command's client before the command is held
// back (its pipes fill and it blocks in write); each carries at most 64 KiB of output.
const highWaterEvents = 4

// followerMaxBytes: queued bytes at which a follower (which cannot hold a background process
// back for others) is dropped; it can follow again and gets the replay.
const followerMaxBytes = 16 * MiB

type Agent struct {
	procs *ProcessManager
	files *FileService
	debug func(string)
}

// rawPath is the request path as the client sent it, before URL normalisation.
func rawPath(r *http.Request) string {
	p := r.RequestURI
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if !strings.HasPrefix(p, "/") {
		p = r.URL.Path
	}
	return p
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	body := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	w.Header().Set("content-type", "application/json")
	w.Header().Set("content-length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, err error) {
	e := toAgentError(err)
	writeJSON(w, e.Status(), e.Body())
}

// readBody reads the body up to maxBytes: over it is 413 at once, whatever content-length said.
func readBody(r *http.Request, maxBytes int64, what string) ([]byte, error) {
	tooLarge := newError("PayloadTooLarge", what+" exceeds the limit of "+strconv.FormatInt(maxBytes, 10)+" bytes")
	if r.ContentLength > maxBytes {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	if int64(len(b)) > maxBytes {
		return nil, tooLarge
	}
	if err != nil {
		return nil, newError("Invalid", "request body: "+err.Error())
	}
	return b, nil
}

func readJSON(r *http.Request) (any, error) {
	b, err := readBody(r, jsonBodyBytes, "JSON body")
	if err != nil {
		return nil, err
	}
	return parseJSONBody(b)
}

// pathParam: the path after a route prefix, URL-decoded once ("." when empty).
func pathParam(r *http.Request, prefix string) (string, error) {
	raw := rawPath(r)
	sent := ""
	if len(raw) > len(prefix) {
		sent = raw[len(prefix):]
	}
	p, err := decodeURIComponent(sent)
	if err != nil {
		return "", newError("Invalid", `path "`+sent+`" is not valid URL encoding`)
	}
	if p == "" {
		return ".", nil
	}
	return p, nil
}

// decodeURIComponent as JavaScript's: %XX sequences must form valid UTF-8; `+` stays.
func decodeURIComponent(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	p, err := url.PathUnescape(s)
	if err != nil || !utf8.ValidString(p) {
		return "", errors.New("malformed")
	}
	return p, nil
}

// answerAt answers f's result for the route's path parameter as JSON (200), or f's error.
func answerAt(w http.ResponseWriter, r *http.Request, prefix string, f func(p string) (any, error)) error {
	p, err := pathParam(r, prefix)
	if err != nil {
		return err
	}
	v, err := f(p)
	if err != nil {
		return err
	}
	writeJSON(w, 200, v)
	return nil
}

// statusAt runs f on the route's path parameter and answers `status` with no body, or f's error.
func statusAt(w http.ResponseWriter, r *http.Request, prefix string, status int, f func(p string) error) error {
	p, err := pathParam(r, prefix)
	if err != nil {
		return err
	}
	if err := f(p); err != nil {
		return err
	}
	w.WriteHeader(status)
	return nil
}

func flag(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	return v == "1" || v == "true"
}

func hasPrefixRoute(path, prefix string) bool {
	return strings.HasPrefix(path, prefix) || path+"/" == prefix
}

var processRoute = regexp.MustCompile(`^/v1/processes/([^/]+)(/output|/stdin|/signal)?$`)

func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// No Date header, as the node agent (whose date formatting was costly under gVisor).
	w.Header()["Date"] = nil
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	path := rawPath(r)
	if err := a.route(w, r, method, path); err != nil {
		writeError(w, err)
	}
}

func (a *Agent) route(w http.ResponseWriter, r *http.Request, method, path string) error {
	switch {
	case path == "/" && method == "GET":
		writeJSON(w, 200, map[string]string{"status": "ok", "message": "Sandbox Runtime is active."})
		return nil
	case path == "/execute" && method == "POST":
		return a.execute(w, r)
	case path == "/upload" && method == "POST":
		return a.upload(w, r)
	case hasPrefixRoute(path, "/download/") && method == "GET":
		return a.download(w, r, "/download/")
	case hasPrefixRoute(path, "/list/") && method == "GET":
		return answerAt(w, r, "/list/", func(p string) (any, error) { return a.files.List(p) })
	case hasPrefixRoute(path, "/exists/") && method == "GET":
		return answerAt(w, r, "/exists/", func(p string) (any, error) {
			ok, err := a.files.Exists(p)
			return struct {
				Path   string `json:"path"`
				Exists bool   `json:"exists"`
			}{p, ok}, err
		})
	case path == "/v1/exec" && method == "POST":
		return a.exec(w, r)
	case path == "/v1/exec-context" && method == "GET":
		writeJSON(w, 200, a.procs.ExecContext())
		return nil
	case path == "/v1/processes" && method == "POST":
		return a.startProcess(w, r)
	case path == "/v1/processes" && method == "GET":
		writeJSON(w, 200, a.procs.List())
		return nil
	case strings.HasPrefix(path, "/v1/processes/"):
		if m := processRoute.FindStringSubmatch(path); m != nil {
			if handled, err := a.process(w, r, method, m[1], m[2]); handled {
				return err
			}
		}
	case hasPrefixRoute(path, "/v1/files/"):
		switch method {
		case "GET":
			return a.download(w, r, "/v1/files/")
		case "PUT":
			return a.putFile(w, r)
		case "DELETE":
			return statusAt(w, r, "/v1/files/", 204, func(p string) error { return a.files.Remove(p, flag(r, "recursive")) })
		}
	case hasPrefixRoute(path, "/v1/stat/") && method == "GET":
		return answerAt(w, r, "/v1/stat/", func(p string) (any, error) { return a.files.Stat(p) })
	case strings.HasPrefix(path, "/v1/ports/") && method == "POST":
		if m := tunnelRoute.FindStringSubmatch(path); m != nil {
			return a.tunnel(w, r, m[1])
		}
	case hasPrefixRoute(path, "/v1/mkdir/") && method == "POST":
		return statusAt(w, r, "/v1/mkdir/", 201, a.files.Mkdir)
	}
	return newError("NotFound", "no route "+r.Method+" "+path)
}

func (a *Agent) execute(w http.ResponseWriter, r *http.Request) error {
	v, err := readJSON(r)
	if err != nil {
		return err
	}
	req, err := parseExecute(v)
	if err != nil {
		return err
	}
	res, err := a.procs.RunBuffered(req)
	if err != nil {
		return err
	}
	writeJSON(w, 200, res)
	return nil
}

func (a *Agent) upload(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r, a.files.maxUploadBytes+multipartOverhead, "upload")
	if err != nil {
		return err
	}
	name, data, err := multipartFile(r.Header.Get("content-type"), body)
	if err != nil {
		return err
	}
	if _, err := a.files.WriteBuffer(name, data); err != nil {
		return err
	}
	writeJSON(w, 200, map[string]string{"message": "File '" + name + "' uploaded successfully."})
	return nil
}

// multipartFile: the first field named "file" of a multipart/form-data body, with its filename
// as sent (not reduced to its base name: a path in it is the client's, checked by the Confiner).
func multipartFile(contentType string, body []byte) (string, []byte, error) {
	invalid := newError("Invalid", `expected multipart/form-data with a "file" field`)
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return "", nil, invalid
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	found := false
	var name string
	var data []byte
	isFile := false
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, invalid
		}
		_, dp, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if err != nil {
			return "", nil, invalid
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return "", nil, invalid
		}
		if dp["name"] == "file" && !found {
			found = true
			name, isFile = dp["filename"]
			data = b
		}
	}
	if !found || !isFile {
		return "", nil, newError("Invalid", `file: a multipart "file" field with a filename is required`)
	}
	return name, data, nil
}

func (a *Agent) download(w http.ResponseWriter, r *http.Request, prefix string) error {
	p, err := pathParam(r, prefix)
	if err != nil {
		return err
	}
	f, size, err := a.files.OpenRead(p)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("content-type", "application/octet-stream")
	w.Header().Set("content-length", strconv.FormatInt(size, 10))
	w.WriteHeader(200)
	// Exactly the bytes the content-length announced: what was appended after the stat is left
	// out, and a file that shrinks under the read ends the stream with an error, not short.
	buf := make([]byte, 64*1024)
	for pos := int64(0); pos < size; {
		want := int64(len(buf))
		if size-pos < want {
			want = size - pos
		}
		n, _ := f.ReadAt(buf[:want], pos)
		if n == 0 {
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return nil
		}
		pos += int64(n)
	}
	return nil
}

func (a *Agent) putFile(w http.ResponseWriter, r *http.Request) error {
	p, err := pathParam(r, "/v1/files/")
	if err != nil {
		return err
	}
	max := a.files.maxUploadBytes
	if r.ContentLength > max {
		return newError("PayloadTooLarge", "upload of "+strconv.FormatInt(r.ContentLength, 10)+
			" bytes exceeds the limit of "+strconv.FormatInt(max, 10)+" bytes (ASB_MAX_UPLOAD_BYTES)")
	}
	res, err := a.files.WriteStream(p, r.Body)
	if err != nil {
		return err
	}
	writeJSON(w, 201, res)
	return nil
}

func (a *Agent) startProcess(w http.ResponseWriter, r *http.Request) error {
	v, err := readJSON(r)
	if err != nil {
		return err
	}
	req, err := parseExec(v)
	if err != nil {
		return err
	}
	p, err := a.procs.Start(req, "")
	if err != nil {
		return err
	}
	<-p.started // the reply carries the pid
	writeJSON(w, 201, struct {
		ID  string `json:"id"`
		Pid int    `json:"pid"`
	}{p.ID, p.Pid()})
	return nil
}

// process: the routes under /v1/processes/{id}; false when none matches the method.
func (a *Agent) process(w http.ResponseWriter, r *http.Request, method, rawID, sub string) (bool, error) {
	id, err := decodeURIComponent(rawID)
	if err != nil {
		id = rawID
	}
	switch {
	case sub == "" && method == "GET":
		p, err := a.procs.Get(id)
		if err != nil {
			return true, err
		}
		writeJSON(w, 200, p.Info())
	case sub == "" && method == "DELETE":
		if err := a.procs.Remove(id); err != nil {
			return true, err
		}
		w.WriteHeader(204)
	case sub == "/output" && method == "GET":
		p, err := a.procs.Get(id)
		if err != nil {
			return true, err
		}
		a.follow(w, r, p, flag(r, "follow"))
	case sub == "/stdin" && method == "POST":
		p, err := a.procs.Get(id)
		if err != nil {
			return true, err
		}
		data, err := readBody(r, stdinChars, "stdin")
		if err != nil {
			return true, err
		}
		if !p.Running() {
			return true, newError("Conflict", `process "`+p.ID+`" has exited`)
		}
		if len(data) > 0 {
			p.WriteStdin(data)
		}
		if flag(r, "eof") {
			p.EndStdin()
		}
		w.WriteHeader(204)
	case sub == "/signal" && method == "POST":
		v, err := readJSON(r)
		if err != nil {
			return true, err
		}
		sig, err := parseSignal(v)
		if err != nil {
			return true, err
		}
		p, err := a.procs.Get(id)
		if err != nil {
			return true, err
		}
		p.Kill(signalNumbers[sig])
		w.WriteHeader(204)
	default:
		return false, nil
	}
	return true, nil
}

func ndjsonHeaders(w http.ResponseWriter) {
	w.Header().Set("content-type", "application/x-ndjson")
	w.Header().Set("cache-control", "no-store")
	w.WriteHeader(200)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// exec: POST /v1/exec, a foreground command whose events stream to this one caller. While the
// caller does not read, the command is held back (flow control of HTTP/2 blocks the writes here,
// the queue fills, the pipe reader blocks, the pipes fill); a caller that goes away has the
// command killed, tree and all, and its pipes drained.
func (a *Agent) exec(w http.ResponseWriter, r *http.Request) error {
	v, err := readJSON(r)
	if err != nil {
		return err
	}
	req, err := parseExec(v)
	if err != nil {
		return err
	}
	events := make(chan *Event, highWaterEvents)
	gone := make(chan struct{})
	var p *Proc
	var held *atomic.Int32
	heldReady := make(chan struct{})
	sink := func(ev *Event) {
		select {
		case events <- ev:
			return
		case <-gone:
			return
		default:
		}
		<-heldReady
		held.Add(1)
		defer held.Add(-1)
		select {
		case events <- ev:
		case <-gone:
		}
	}
	p, err = a.procs.Spawn(req, spawnOpts{sink: sink})
	if err != nil {
		return err
	}
	held = &p.held
	close(heldReady)
	ndjsonHeaders(w)
	flusher, _ := w.(http.Flusher)
	var cancelOnce sync.Once
	cancel := func() {
		cancelOnce.Do(func() {
			close(gone)
			p.Kill(syscall.SIGKILL)
		})
	}
	defer cancel()
	ctx := r.Context()
	for {
		select {
		case ev := <-events:
			// What else is queued goes out in the same flush.
			for {
				if _, err := w.Write(ev.Line()); err != nil {
					return nil
				}
				if ev.Type == "exit" {
					if flusher != nil {
						flusher.Flush()
					}
					return nil
				}
				select {
				case ev = <-events:
					continue
				default:
				}
				break
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// follower: the queue of one reader of a background process's output; it never blocks the
// process, and is ended once it falls too far behind.
type follower struct {
	mu     sync.Mutex
	queue  [][]byte
	bytes  int
	ended  bool
	notify chan struct{}
}

func (f *follower) push(ev *Event) {
	f.mu.Lock()
	if f.ended {
		f.mu.Unlock()
		return
	}
	line := ev.Line()
	f.queue = append(f.queue, line)
	f.bytes += len(line)
	if ev.Type == "exit" || f.bytes >= followerMaxBytes {
		f.ended = true
	}
	f.mu.Unlock()
	f.wake()
}

func (f *follower) end() {
	f.mu.Lock()
	f.ended = true
	f.mu.Unlock()
	f.wake()
}

func (f *follower) wake() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// follow: GET /v1/processes/{id}/output: the replay, then (with follow, while it runs) new events.
func (a *Agent) follow(w http.ResponseWriter, r *http.Request, p *Proc, follow bool) {
	f := &follower{notify: make(chan struct{}, 1)}
	unsub := p.Subscribe(f.push, follow)
	defer unsub()
	if !follow || !p.Running() {
		f.end()
	}
	ndjsonHeaders(w)
	flusher, _ := w.(http.Flusher)
	ctx := r.Context()
	for {
		f.mu.Lock()
		q := f.queue
		f.queue = nil
		f.bytes = 0
		ended := f.ended
		f.mu.Unlock()
		for _, line := range q {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
		if len(q) > 0 && flusher != nil {
			flusher.Flush()
		}
		if ended {
			f.mu.Lock()
			empty := len(f.queue) == 0
			f.mu.Unlock()
			if empty {
				return
			}
			continue
		}
		select {
		case <-f.notify:
		case <-ctx.Done():
			return
		}
	}
}
