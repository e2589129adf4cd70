// The request bodies and their limits, as packages/runtime/src/schemas.ts defines them with zod;
// refusals are worded as zod words them (`path: message`, joined with "; ").
package main

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	MiB            = 1024 * 1024
	jsonBodyBytes  = 20 * MiB
	commandChars   = MiB
	envEntries     = 256
	envValueChars  = MiB
	stdinChars     = 16 * MiB
	pathChars      = 4096
	mainArgvMaxLen = 4096
)

var signalList = []string{"SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT"}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// utf16Len: a JavaScript string's length.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

type issues []string

func (is *issues) add(path, msg string) {
	if path == "" {
		path = "(body)"
	}
	*is = append(*is, path+": "+msg)
}

func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		_ = x
		return "object"
	}
	return "unknown"
}

func expected(want string, v any, present bool) string {
	got := "undefined"
	if present {
		got = typeName(v)
	}
	return "Invalid input: expected " + want + ", received " + got
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// str checks an optional (or required) string field.
func str(is *issues, obj map[string]any, key string, required bool, min int, minMsg string, max int) *string {
	v, ok := obj[key]
	if !ok {
		if required {
			is.add(key, expected("string", nil, false))
		}
		return nil
	}
	s, isStr := v.(string)
	if !isStr {
		is.add(key, expected("string", v, true))
		return nil
	}
	n := utf16Len(s)
	if n < min {
		is.add(key, minMsg)
		return nil
	}
	if n > max {
		is.add(key, "Too big: expected string to have <="+strconv.Itoa(max)+" characters")
		return nil
	}
	return &s
}

func num(is *issues, obj map[string]any, key string, integer bool, max float64) *float64 {
	v, ok := obj[key]
	if !ok {
		return nil
	}
	f, isNum := v.(float64)
	if !isNum {
		is.add(key, expected("number", v, true))
		return nil
	}
	if integer && (f != math.Trunc(f) || math.Abs(f) > 9007199254740991) {
		is.add(key, "Invalid input: expected int, received number")
		return nil
	}
	if f <= 0 {
		is.add(key, "Too small: expected number to be >0")
		return nil
	}
	if f > max {
		is.add(key, "Too big: expected number to be <="+fmtNum(max))
		return nil
	}
	return &f
}

func envField(is *issues, obj map[string]any) map[string]string {
	v, ok := obj["env"]
	if !ok {
		return nil
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		is.add("env", expected("record", v, true))
		return nil
	}
	out := map[string]string{}
	bad := false
	for k, val := range m {
		if !envName.MatchString(k) {
			is.add("env."+k, "environment variable names are letters, digits and _")
			bad = true
			continue
		}
		if utf16Len(k) > 256 {
			is.add("env."+k, "Too big: expected string to have <=256 characters")
			bad = true
			continue
		}
		s, isStr := val.(string)
		if !isStr {
			is.add("env."+k, expected("string", val, true))
			bad = true
			continue
		}
		if utf16Len(s) > envValueChars {
			is.add("env."+k, "Too big: expected string to have <="+strconv.Itoa(envValueChars)+" characters")
			bad = true
			continue
		}
		out[k] = s
	}
	if !bad && len(m) > envEntries {
		is.add("env", "at most "+strconv.Itoa(envEntries)+" environment variables")
	}
	return out
}

// parseJSONBody: the body as a JSON value, or 400 MalformedJSON.
func parseJSONBody(body []byte) (any, error) {
	if !utf8.Valid(body) {
		body = []byte(strings.ToValidUTF8(string(body), "\uFFFD"))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, newError("MalformedJSON", "request body is not valid JSON: "+err.Error())
	}
	return v, nil
}

func object(is *issues, v any) map[string]any {
	obj, ok := v.(map[string]any)
	if !ok {
		is.add("", expected("object", v, true))
		return nil
	}
	return obj
}

func (is issues) err() error {
	if len(is) == 0 {
		return nil
	}
	return newError("Invalid", strings.Join(is, "; "))
}

// parseExecute: upstream's POST /execute body ({command}, timeout in seconds, ...).
func parseExecute(v any) (ExecRequest, error) {
	var is issues
	var req ExecRequest
	obj := object(&is, v)
	if obj == nil {
		return req, is.err()
	}
	cmd := str(&is, obj, "command", true, 1, "command must not be empty", commandChars)
	timeout := num(&is, obj, "timeout", false, 86400)
	req.Env = envField(&is, obj)
	req.Cwd = str(&is, obj, "cwd", false, 0, "", pathChars)
	req.Stdin = str(&is, obj, "stdin", false, 0, "", stdinChars)
	if err := is.err(); err != nil {
		return req, err
	}
	req.Command = *cmd
	if timeout != nil {
		ms := int64(math.Round(*timeout * 1000))
		req.TimeoutMs = &ms
	}
	return req, nil
}

// parseExec: POST /v1/exec and POST /v1/processes.
func parseExec(v any) (ExecRequest, error) {
	var is issues
	var req ExecRequest
	obj := object(&is, v)
	if obj == nil {
		return req, is.err()
	}
	cmd := str(&is, obj, "command", true, 1, "command must not be empty", commandChars)
	req.Env = envField(&is, obj)
	req.Cwd = str(&is, obj, "cwd", false, 0, "", pathChars)
	timeout := num(&is, obj, "timeoutMs", true, 86_400_000)
	req.Stdin = str(&is, obj, "stdin", false, 0, "", stdinChars)
	if enc, ok := obj["encoding"]; ok {
		switch enc {
		case "utf8":
		case "base64":
			req.Base64 = true
		default:
			is.add("encoding", `Invalid option: expected one of "utf8"|"base64"`)
		}
	}
	if err := is.err(); err != nil {
		return req, err
	}
	req.Command = *cmd
	if timeout != nil {
		ms := int64(*timeout)
		req.TimeoutMs = &ms
	}
	return req, nil
}

func parseSignal(v any) (string, error) {
	var is issues
	obj := object(&is, v)
	if obj == nil {
		return "", is.err()
	}
	s, _ := obj["signal"].(string)
	for _, name := range signalList {
		if s == name {
			return s, nil
		}
	}
	is.add("signal", `Invalid option: expected one of "`+strings.Join(signalList, `"|"`)+`"`)
	return "", is.err()
}

// parseMainArgv: `--main '<json argv>'`, the sandbox's main process.
func parseMainArgv(text string) ([]string, string) {
	var raw any
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		short := text
		if len(short) > 80 {
			short = short[:80]
		}
		return nil, "--main must be a JSON array of strings, got " + short
	}
	arr, ok := raw.([]any)
	if !ok {
		return nil, "--main must be a JSON array of strings: " + expected("array", raw, true)
	}
	if len(arr) < 1 {
		return nil, "--main must be a JSON array of strings: the main process needs a program"
	}
	if len(arr) > mainArgvMaxLen {
		return nil, "--main must be a JSON array of strings: Too big: expected array to have <=4096 items"
	}
	out := make([]string, len(arr))
	for i, a := range arr {
		s, ok := a.(string)
		if !ok {
			return nil, "--main must be a JSON array of strings: " + expected("string", a, true)
		}
		if utf16Len(s) > commandChars {
			return nil, "--main must be a JSON array of strings: Too big: expected string to have <=1048576 characters"
		}
		out[i] = s
	}
	return out, ""
}
