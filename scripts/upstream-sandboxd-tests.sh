#!/usr/bin/env bash
# Runs upstream's own sandboxd server tests (sigs.k8s.io/agent-sandbox v1.0.1,
# packages/sandboxd/pkg/server/{process,filesystem}_test.go, from the Go module cache, never
# copied into this repository) against our sandboxd (dist/sandboxd.cjs; `npm run build` first).
# In a scratch copy of the module, each test fixture's in-process server is replaced by our
# daemon started on that fixture's temp dir: newProcessClient dials its gRPC port, newRESTFixture's
# handler proxies to its REST port. Left out: the tests that reach into upstream's server object
# (SetReady, a swapped environ, New()), which packages/runtime/test/sandboxd.test.ts covers, and
# goleak's TestMain (the daemons are processes, not goroutines).
# Expected: all 34 pass, TestStartWithPTY and TestResizeTTYWithPTY included (the ptys come from
# dist/asb-spawn, next to dist/sandboxd.cjs).
# Arguments go to `go test`: `-json` for test2json's events (test/e2e/sandboxd-upstream.test.ts
# reads them), `-run TestStart` for some. UPSTREAM_MODULE: the module's directory, if not in the
# module cache; GOPROXY: off unless set (the modules upstream's tests import must then be cached).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
mod=${UPSTREAM_MODULE:-$(go env GOMODCACHE)/sigs.k8s.io/agent-sandbox@v1.0.1}
[ -f "$repo/dist/sandboxd.cjs" ] || { echo "dist/sandboxd.cjs is missing: run npm run build" >&2; exit 1; }
[ -d "$mod" ] || { echo "$mod is missing: go mod download sigs.k8s.io/agent-sandbox@v1.0.1 (outside a module)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$mod/." "$work" && chmod -R u+w "$work"
dir="$work/packages/sandboxd/pkg/server"
rm -f "$dir/testmain_test.go"
cat > "$dir/zz_external_test.go" <<'EOF'
package server

// Points upstream's own server tests at an external sandboxd (SANDBOXD_BIN: a node script), one
// daemon per fixture, rooted at the fixture's temp dir.

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func startExternal(t *testing.T, root string) (string, string) {
	t.Helper()
	gp, rp := freePort(t), freePort(t)
	cmd := exec.Command("node", os.Getenv("SANDBOXD_BIN"), "--root-dir", root, "--listen-host", "127.0.0.1",
		"--grpc-port", gp, "--rest-port", rp)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	for i := 0; i < 400; i++ {
		resp, err := http.Get("http://127.0.0.1:" + rp + "/v1/health")
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	return "127.0.0.1:" + gp, "127.0.0.1:" + rp
}

func externalREST(t *testing.T, root string) http.Handler {
	_, restAddr := startExternal(t, root)
	u, err := url.Parse("http://" + restAddr)
	require.NoError(t, err)
	return httputil.NewSingleHostReverseProxy(u)
}
EOF
python3 - "$dir" <<'EOF'
import sys
d = sys.argv[1]
p = f"{d}/process_test.go"; s = open(p).read()
a = s.index("\tlis := bufconn.Listen(1024 * 1024)"); b = s.index("\treturn processv1.NewProcessServiceClient(conn)\n}")
s = s[:a] + """\tgrpcAddr, _ := startExternal(t, rootDir)
\tconn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
\trequire.NoError(t, err)
\tt.Cleanup(func() { require.NoError(t, conn.Close()) })
""" + s[b:] + "\nvar _ = bufconn.Listen\nvar _ net.Conn\nvar _ = processmanager.NewProcessRegistry\n"
open(p, "w").write(s)
p = f"{d}/filesystem_test.go"; s = open(p).read()
old = '\ts := NewRESTServer(root, "SANDBOX_", logr.Discard())\n\treturn s, s.Handler(), root'
assert old in s
open(p, "w").write(s.replace(old, '\ts := NewRESTServer(root, "SANDBOX_", logr.Discard())\n\treturn s, externalREST(t, root), root'))
EOF
cd "$work"
SANDBOXD_BIN="$repo/dist/sandboxd.cjs" GOFLAGS=-mod=mod GOPROXY=${GOPROXY:-off} \
  go test ./packages/sandboxd/pkg/server/ -count=1 -v \
  -skip 'TestSandboxdIntegration|TestShutdownProcessesTerminatesChildren|TestNewServerEmptyRootDirError|TestHealthReadyAndShutdown|TestMetadataFiltersEnv' "$@"
