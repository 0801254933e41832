"""Real emulators over HTTP for the release tests: moto in server mode, govmomi's vCenter simulator.

    with moto_server() as url: boto3.client("ec2", endpoint_url=url, region_name="eu-west-1")
    point_boto3_at(monkeypatch, url, "eu-west-1")              # or through boto3's own environment
    with vcsim() as sim: sim.url, sim.user, sim.password   # https://127.0.0.1:PORT/sdk

Both run as subprocesses on a free port of 127.0.0.1 and are stopped when the block ends.

    with cutting_proxy(port) as proxy: ...   # 127.0.0.1:proxy.port relays to port, cuts long uploads off
"""

import contextlib
import hashlib
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

VCSIM_SOURCE = os.path.join(os.path.dirname(__file__), "data", "vcsim", "main.go")
VCSIM_CACHE = os.path.expanduser("~/.cache/golden/vcsim")
GOPATH = "/usr/share/gocode"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url, proc, what, log, timeout=30):
    import ssl
    context = ssl._create_unverified_context()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2, context=context)
            return
        except urllib.error.HTTPError:
            return          # it answers, even if with an error status
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer on {url} within {timeout} s")


@contextlib.contextmanager
def _serving(cmd, url, what, env=None):
    # The server logs every request: into a file, as a pipe nobody reads fills up and hangs the server.
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True,
                            env={**os.environ, **(env or {})})
    try:
        _wait_http(url, proc, what, log)
        yield proc
    finally:
        log.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def moto_server(env=None):
    """moto 5 in server mode; `env` e.g. {"INITIAL_NO_AUTH_ACTION_COUNT": "3"} turns IAM enforcement on."""
    pytest.importorskip("moto.server", reason="moto[server]==5.2.5 is not installed")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="moto-") as tmp:
        no_amis = os.path.join(tmp, "amis.json")
        with open(no_amis, "w") as fh:
            fh.write("[]")          # no stock AMIs and their snapshots: the account holds only what a test made
        with _serving([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], url + "/moto-api/",
                      "moto_server", {"MOTO_AMIS_PATH": no_amis, **(env or {})}):
            yield url


def point_boto3_at(monkeypatch, url, region, reset=True):
    """boto3's own environment (endpoint, test credentials, region) set to the moto at `url`, its state reset."""
    if reset:
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"))
    for key, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": region}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def vcsim_binary():
    """The simulator built once from tests/data/vcsim/main.go (GOPATH mode, Debian's govmomi), cached by its sha256."""
    if not shutil.which("go") or not os.path.isdir(os.path.join(GOPATH, "src", "github.com", "vmware", "govmomi")):
        pytest.skip("the vCenter simulator needs Debian's golang-go and golang-github-vmware-govmomi-dev")
    with open(VCSIM_SOURCE, "rb") as fh:
        key = hashlib.sha256(fh.read()).hexdigest()[:16]
    binary = os.path.join(VCSIM_CACHE, f"vcsim-{key}")
    if not os.path.exists(binary):
        os.makedirs(VCSIM_CACHE, exist_ok=True)
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOCACHE": os.path.join(VCSIM_CACHE, "gocache"),
               "GOFLAGS": ""}
        proc = subprocess.run(["go", "build", "-o", binary + ".tmp", VCSIM_SOURCE], env=env, capture_output=True, check=False,
                              text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"building the vCenter simulator failed:\n{proc.stderr[-4000:]}")
        os.replace(binary + ".tmp", binary)
    return binary


@dataclass
class Vcsim:
    url: str
    user: str
    password: str


@contextlib.contextmanager
def vcsim(user="golden", password="s3cret-Pass"):
    binary = vcsim_binary()
    port = free_port()
    url = f"https://127.0.0.1:{port}/sdk"
    with _serving([binary, "-listen", f"127.0.0.1:{port}", "-username", user, "-password", password],
                  f"https://127.0.0.1:{port}/about", "vcsim"):
        yield Vcsim(url, user, password)


def small_qcow2(path):
    """A 3 MiB qcow2 with two written extents and zeros between them (a target's upload in seconds)."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "3M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0xab 0 700k", "-c", "write -P 0x5c 2560k 100k", path], check=True,
                   capture_output=True)
    return path


def published_store(root, version, disk):
    """A store directory as a publish leaves it (index entry, image, gate, artifact and run records) for `disk`."""
    from pipeline.store.store import Store
    from pipeline.util import sha256_file, write_json_atomic
    directory = os.path.join(root, "images", version)
    os.makedirs(directory)
    image = os.path.join(directory, f"{version}.qcow2")
    shutil.copyfile(disk, image)
    digest = sha256_file(image)
    write_json_atomic(os.path.join(directory, "gate.json"), {
        "version": version, "artifact": {"file": os.path.basename(image), "sha256": digest}, "decision": "pass"})
    write_json_atomic(os.path.join(directory, "artifact.json"), {"sha256": digest, "hardening_version": "1.1.1"})
    write_json_atomic(os.path.join(directory, "run.json"), {"version": version, "image": "linux", "commit": "test"})
    write_json_atomic(os.path.join(root, "index.json"), {"images": {version: {
        "version": version, "image": "linux", "file": f"images/{version}/{version}.qcow2", "sha256": digest,
        "size": os.path.getsize(image), "gate": f"images/{version}/gate.json"}}})
    return Store(root)


def random_qcow2(path, written=1 << 20):
    """A 3 MiB qcow2 whose first `written` bytes are random: its streamOptimized VMDK stays that large."""
    raw = path + ".raw"
    with open(raw, "wb") as fh:
        fh.write(os.urandom(written))
        fh.truncate(3 << 20)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, path], check=True)
    os.unlink(raw)
    return path


@dataclass
class Proxy:
    port: int
    cuts: int = 0               # connections it cut off


@contextlib.contextmanager
def cutting_proxy(port, cut_after=128 << 10):
    """A TCP relay on 127.0.0.1 to `port` that resets a connection once its client has sent `cut_after` bytes
    with no answer in between: requests and their answers pass, an upload is dropped mid-stream."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    proxy = Proxy(listener.getsockname()[1])
    stop = threading.Event()

    def relay(client):
        with client, socket.create_connection(("127.0.0.1", port)) as server:
            unanswered = 0
            while not stop.is_set():
                for sock in select.select([client, server], [], [], 0.2)[0]:
                    data = sock.recv(1 << 16)
                    if not data:
                        return
                    if sock is server:
                        unanswered = 0
                        client.sendall(data)
                        continue
                    unanswered += len(data)
                    if unanswered > cut_after:
                        proxy.cuts += 1
                        # linger 0: close() sends a reset, as a dropped network path or a killed peer does
                        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        return
                    server.sendall(data)

    def serve():
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        thread.join()
        listener.close()
