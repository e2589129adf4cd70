// A command with no shell syntax at all (`python3 main.py`, `true`) runs without a shell, as
// packages/runtime/src/direct-exec.ts decides: anything a shell would interpret keeps `bash -c`.
package main

import (
	"regexp"
	"strings"
)

var plainWord = regexp.MustCompile(`^[A-Za-z0-9_@%+,./:-][A-Za-z0-9_@%+,./:=-]*$`)

// Builtins whose program of the same name (coreutils) behaves the same for plain words.
var sameAsProgram = map[string]bool{"true": true, "false": true, "echo": true, "printf": true, "test": true}

// Shell builtins and keywords: these need the shell.
var shellOnly = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`alias bg bind break builtin caller case cd command compgen complete
		compopt continue coproc declare dirs disown do done elif else enable esac eval exec exit export fc
		fg fi for function getopts hash help history if in jobs kill let local logout mapfile popd pushd
		pwd read readarray readonly return select set shift shopt source suspend then time times trap type
		typeset ulimit umask unalias unset until wait while . : [ [[ ]] { } !`) {
		shellOnly[w] = true
	}
}

var blanks = regexp.MustCompile(`[ \t]+`)

// directArgv is the argv to exec directly, or nil when the command needs a shell.
func directArgv(command string) []string {
	// JavaScript's trim(): whitespace and line terminators at both ends.
	trimmed := strings.TrimFunc(command, isJSSpace)
	words := blanks.Split(trimmed, -1)
	if len(words) == 0 || len(words) > 256 || strings.Contains(command, "\n") {
		return nil
	}
	for _, w := range words {
		if !plainWord.MatchString(w) {
			return nil
		}
	}
	first := words[0]
	if strings.Contains(first, "=") {
		return nil
	}
	if shellOnly[first] && !sameAsProgram[first] {
		return nil
	}
	return words
}

func isJSSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}
