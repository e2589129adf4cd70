//go:build tools

// Upstream's controller, v1.0.1 (the newest the Go module proxy serves), for the side-by-side
// run of upstream's v1.0.1 e2e suite (scripts/upstream-e2e.ts), and its Go router (the
// differential router test, packages/k8s/test/router-upstream.test.ts). Binaries named
// agent-sandbox-controller-v1.0.1 and sandbox-router-v1.0.1.
package tools

import (
	_ "sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller"
	_ "sigs.k8s.io/agent-sandbox/sandbox-router/cmd"
)
