// The agent's error reasons and their statuses (packages/api/src/reasons.ts, the agent's subset,
// packages/runtime/src/errors.ts). Bodies are upstream's FastAPI shape (`detail`) plus a stable
// `reason`, with `message` repeating `detail` for upstream clients.
package main

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

var statusOf = map[string]int{
	"PathOutsideSandbox":  400,
	"MalformedJSON":       400,
	"PermissionDenied":    403,
	"NotFound":            404,
	"Conflict":            409,
	"PayloadTooLarge":     413,
	"Invalid":             422,
	"Internal":            500,
	"BadGateway":          502,
	"InsufficientStorage": 507,
}

type AgentError struct {
	Reason  string
	Message string
}

func (e *AgentError) Error() string { return e.Message }
func (e *AgentError) Status() int   { return statusOf[e.Reason] }

type errorBody struct {
	Detail  string `json:"detail"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (e *AgentError) Body() errorBody { return errorBody{e.Message, e.Reason, e.Message} }

func newError(reason, message string) *AgentError { return &AgentError{reason, message} }

// toAgentError maps any error to the answer the node agent gives for it (errno codes first).
func toAgentError(err error) *AgentError {
	var ae *AgentError
	if errors.As(err, &ae) {
		return ae
	}
	path := ""
	var pe *fs.PathError
	if errors.As(err, &pe) {
		path = pe.Path
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		path = le.Old
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EACCES, syscall.EPERM, syscall.EROFS:
			return newError("PermissionDenied", "permission denied: "+path+" (the sandbox user cannot write there)")
		case syscall.ENOENT:
			return newError("NotFound", "File not found")
		case syscall.ENOTDIR:
			return newError("NotFound", "Path is not a directory")
		case syscall.EISDIR:
			return newError("Conflict", "Path is a directory")
		case syscall.ELOOP:
			return newError("Invalid", "path cannot be resolved: too many symbolic links")
		case syscall.ENAMETOOLONG:
			return newError("Invalid", "path cannot be resolved: name too long")
		case syscall.ENOTEMPTY:
			return newError("Conflict", "Directory is not empty (pass recursive=1)")
		case syscall.EEXIST:
			if path != "" {
				return newError("Conflict", `"`+path+`" exists already`)
			}
			return newError("Conflict", "the path exists already")
		case syscall.ENOSPC, syscall.EDQUOT:
			return newError("InsufficientStorage", "no space left on the sandbox's disk (its ephemeral-storage limit, or the volume's size)")
		}
	}
	return newError("Internal", err.Error())
}
