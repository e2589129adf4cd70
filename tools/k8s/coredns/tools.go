//go:build tools

// Pins CoreDNS, the real node's cluster DNS (test/k8s/cluster.ts runs it as a host process with
// its kubernetes plugin for cluster.local).
package tools

import (
	_ "github.com/coredns/coredns"
)
