//go:build tools

// Upstream's controller, v1.0.1 (the newest the Go module proxy serves), for the side-by-side
// run of upstream's v1.0.1 e2e suite (scripts/upstream-e2e.ts). Its binary is named
// agent-sandbox-controller-v1.0.1 beside v0.5.6's.
package tools

import _ "sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller"
