package greet

import "testing"

func TestHello(t *testing.T) {
	if got, want := Hello("Alice"), "hello, Alice — from the multi-file sandbox sample"; got != want {
		t.Fatalf("Hello(Alice) = %q, want %q", got, want)
	}
}
