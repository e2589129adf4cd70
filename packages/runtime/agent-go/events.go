// The events of a command, as packages/runtime/src/replies.ts ExecEvent defines them, and their
// NDJSON lines (field order as the node agent writes them).
package main

import (
	"bytes"
	"encoding/json"
	"strconv"
)

type Event struct {
	Type       string // start | stdout | stderr | exit
	Pid        int
	Data       string // text, or base64 when Base64
	Base64     bool
	ExitCode   *int
	Signal     *string
	TimedOut   bool
	DurationMs int64
	line       []byte
}

// jsonString is JSON.stringify's string: no HTML escaping.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Line is the event's NDJSON line, newline included.
func (e *Event) Line() []byte {
	if e.line != nil {
		return e.line
	}
	b := make([]byte, 0, len(e.Data)+64)
	b = append(b, `{"type":"`...)
	b = append(b, e.Type...)
	b = append(b, '"')
	switch e.Type {
	case "start":
		b = append(b, `,"pid":`...)
		b = strconv.AppendInt(b, int64(e.Pid), 10)
	case "stdout", "stderr":
		b = append(b, `,"data":`...)
		if e.Base64 {
			b = append(b, '"')
			b = append(b, e.Data...)
			b = append(b, '"')
			b = append(b, `,"encoding":"base64"`...)
		} else {
			b = append(b, jsonString(e.Data)...)
		}
	case "exit":
		b = append(b, `,"exitCode":`...)
		if e.ExitCode == nil {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendInt(b, int64(*e.ExitCode), 10)
		}
		b = append(b, `,"signal":`...)
		if e.Signal == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, jsonString(*e.Signal)...)
		}
		b = append(b, `,"timedOut":`...)
		b = strconv.AppendBool(b, e.TimedOut)
		b = append(b, `,"durationMs":`...)
		b = strconv.AppendInt(b, e.DurationMs, 10)
	}
	b = append(b, "}\n"...)
	e.line = b
	return b
}

// byteLength: the bytes of output an event carries, as the node agent counts them for replay.
func (e *Event) byteLength() int {
	if e.Type != "stdout" && e.Type != "stderr" {
		return 0
	}
	if e.Base64 {
		return len(e.Data) * 3 / 4
	}
	return len(e.Data)
}
