"""Upstream's Python client (PyPI k8s-agent-sandbox) against our controller and router.

Run by test/k8s/python-client.test.ts with KUBECONFIG, ROUTER_URL and, for clients that send
one, ROUTER_TOKEN. Prints one JSON line of what the client saw.
"""
import json
import os
from importlib.metadata import version

from k8s_agent_sandbox import SandboxClient
from k8s_agent_sandbox.models import SandboxDirectConnectionConfig

VERSION = version("k8s-agent-sandbox")
MAJOR_MINOR = tuple(int(x) for x in VERSION.split(".")[:2])

config = {"api_url": os.environ["ROUTER_URL"]}
if os.environ.get("ROUTER_TOKEN"):
    # 0.5+ clients take extra headers for a router that wants its bearer token.
    config["extra_headers"] = {"Authorization": f"Bearer {os.environ['ROUTER_TOKEN']}"}
client = SandboxClient(connection_config=SandboxDirectConnectionConfig(**config))

if MAJOR_MINOR < (0, 5):
    # v0.4: a v1alpha1 claim on the template (a warm pool of it may serve it).
    sandbox = client.create_sandbox("python-runtime-template", namespace="default", sandbox_ready_timeout=90)
else:
    # v0.5 and later: a v1beta1 claim on a warm pool.
    sandbox = client.create_sandbox("python-sandbox-warmpool", namespace="default", sandbox_ready_timeout=90)

result = sandbox.commands.run("echo hello from the python client")
sandbox.files.write("py.txt", b"bytes \x00\x01 from python")
seen = {
    "version": VERSION,
    "claim": sandbox.claim_name,
    "sandbox": sandbox.sandbox_id,
    "stdout": result.stdout,
    "exit_code": result.exit_code,
    "read": list(sandbox.files.read("py.txt")),
    "exists": sandbox.files.exists("py.txt"),
    "missing": sandbox.files.exists("nope.txt"),
    "names": sorted(e.name for e in sandbox.files.list(".")),
    "status": list(sandbox.status()),
}
sandbox.terminate()
print(json.dumps(seen))
