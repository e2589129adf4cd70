//go:build tools

// Upstream's controller, v0.5.6, for the side-by-side tests and benchmarks (test/k8s/upstream.ts).
package tools

import _ "sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller"
