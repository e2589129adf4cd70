"""Upstream's Python client (PyPI k8s-agent-sandbox[grpc] 1.0.8) against our sandboxd.

Run by test/e2e/sandboxd-python-client.test.ts with SANDBOXD_REST_PORT and SANDBOXD_GRPC_PORT
(our sandboxd's ports) and the kubectl stand-in beside this file first on PATH. The client's own
code does everything: its sandboxd connection mode (SandboxdPodTunnelConnectionConfig), its
port-forward tunnel, its REST filesystem calls, its gRPC Execute for commands.run, and, for what
its high-level API does not offer (streaming, stdin, signals), its own generated ProcessService
stubs over its own channel. Prints one JSON line of what it saw.
"""
import json
import os
import time
from importlib.metadata import version

import grpc
from google.protobuf import empty_pb2
from kubernetes import client as k8s_client

from k8s_agent_sandbox.commands._process_stubs import process_pb2, process_pb2_grpc
from k8s_agent_sandbox.exceptions import SandboxRequestError
from k8s_agent_sandbox.k8s_helper import K8sHelper
from k8s_agent_sandbox.models import SandboxdPodTunnelConnectionConfig
from k8s_agent_sandbox.sandbox import Sandbox

seen = {"version": version("k8s-agent-sandbox")}

sandbox = Sandbox(
    claim_name="sandboxd-claim",
    sandbox_id="sandboxd-sbx",
    namespace="default",
    connection_config=SandboxdPodTunnelConnectionConfig(
        rest_port=int(os.environ["SANDBOXD_REST_PORT"]),
        grpc_port=int(os.environ["SANDBOXD_GRPC_PORT"]),
    ),
    # An ApiClient of its own: no kubeconfig is read. The one lookup the tunnel makes, the
    # sandbox's pod name, is answered below, as the Sandbox caches it after a cluster lookup.
    k8s_helper=K8sHelper(api_client=k8s_client.ApiClient()),
)
sandbox._pod_name = "sandboxd-pod"


def status_of(fn):
    try:
        fn()
        return 0
    except SandboxRequestError as e:
        return e.status_code


# --- commands.run: gRPC Execute of "/bin/sh -c ..." ---
ok = sandbox.commands.run("echo hello from the python client")
err = sandbox.commands.run("echo oops >&2; exit 3")
seen["run"] = [ok.stdout, ok.stderr, ok.exit_code]
seen["run_err"] = [err.stdout, err.stderr, err.exit_code]
seen["run_pwd"] = sandbox.commands.run("pwd").stdout.strip()

# --- files: REST /v1/files ---
payload = bytes(range(256)) * 64 + b"\x00 tail"
sandbox.files.write("dir/sub/py.bin", payload)
sandbox.files.write("dir/hello.txt", "hello from python")
seen["read_ok"] = sandbox.files.read("dir/sub/py.bin") == payload
seen["read_text"] = sandbox.files.read("dir/hello.txt").decode()
seen["cat"] = sandbox.commands.run("cat dir/hello.txt").stdout
seen["exists"] = sandbox.files.exists("dir/hello.txt")
seen["exists_dir"] = sandbox.files.exists("dir")
seen["missing"] = sandbox.files.exists("nope.txt")
entries = sandbox.files.list("dir")
seen["list"] = [[e.name, e.type, e.size, e.mode, e.modified.tzinfo is not None] for e in entries]
seen["list_root"] = sorted(e.name for e in sandbox.files.list(""))
seen["delete_nonempty"] = status_of(lambda: sandbox.files.delete("dir"))
sandbox.files.delete("dir/hello.txt")
seen["after_delete"] = sandbox.files.exists("dir/hello.txt")
seen["delete_missing"] = status_of(lambda: sandbox.files.delete("dir/hello.txt"))
sandbox.files.delete("dir", recursive=True)
seen["after_rm_rf"] = sandbox.files.exists("dir")
seen["traversal"] = status_of(lambda: sandbox.files.read("../../etc/passwd", allow_unsafe_paths=True))
seen["read_missing"] = status_of(lambda: sandbox.files.read("nope.txt"))

# --- the ProcessService through the client's own stubs and channel ---
sandbox.connector.connect()
stub = process_pb2_grpc.ProcessServiceStub(sandbox.connector.grpc_channel())


def start(command, **kw):
    return stub.Start(process_pb2.StartRequest(config=process_pb2.ProcessConfig(command=command, **kw)), timeout=30)


# Streaming: each line arrives as the command writes it, not at its end.
arrivals = []
t0 = time.monotonic()
for ev in start(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done"]):
    kind = ev.WhichOneof("event")
    if kind == "stdout":
        arrivals.append([ev.stdout.decode(), round(time.monotonic() - t0, 2)])
    elif kind == "exit":
        seen["stream_exit"] = ev.exit.exit_code
seen["stream"] = arrivals

# stdin, then EOF, to cat.
stream = start(["cat"])
out = b""
for ev in stream:
    kind = ev.WhichOneof("event")
    if kind == "init":
        pid = ev.init.process_id
        stub.WriteStdin(process_pb2.WriteStdinRequest(process_id=pid, input=b"piped through "))
        stub.WriteStdin(process_pb2.WriteStdinRequest(process_id=pid, input=b"stdin"))
        stub.WriteStdin(process_pb2.WriteStdinRequest(process_id=pid, eof=empty_pb2.Empty()))
    elif kind == "stdout":
        out += ev.stdout
    elif kind == "exit":
        seen["stdin_exit"] = ev.exit.exit_code
seen["stdin"] = out.decode()

# Signals: SIGTERM ends a sleeping command; ResizeTTY without a PTY is refused.
for ev in start(["sh", "-c", "echo ready; sleep 30"], env_vars={"X": "1"}, cwd="."):
    kind = ev.WhichOneof("event")
    if kind == "init":
        pid = ev.init.process_id
    elif kind == "stdout":
        try:
            stub.ResizeTTY(process_pb2.ResizeTTYRequest(process_id=pid, cols=80, rows=24))
        except grpc.RpcError as e:
            seen["resize"] = e.code().name
        stub.SendSignal(process_pb2.SendSignalRequest(process_id=pid, signal=process_pb2.SIGNAL_SIGTERM))
    elif kind == "exit":
        seen["signal_exit"] = ev.exit.exit_code


def code_of(fn):
    try:
        fn()
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


seen["unknown_pid"] = code_of(lambda: stub.WriteStdin(process_pb2.WriteStdinRequest(process_id=424242, input=b"x")))
seen["cwd_escape"] = code_of(
    lambda: stub.Execute(process_pb2.ExecuteRequest(config=process_pb2.ProcessConfig(command=["pwd"], cwd="../.."))))
seen["pty"] = code_of(
    lambda: list(stub.Start(process_pb2.StartRequest(
        config=process_pb2.ProcessConfig(command=["sh", "-c", "stty size"]), pty=process_pb2.PTY(cols=80, rows=24)))))

sandbox.connector.close()
print(json.dumps(seen))
