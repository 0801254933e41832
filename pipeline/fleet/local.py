"""Local fleet hosts: each a QEMU guest booted from a published image, daemonized with a pid file, so
it keeps running after golden returns and until it is destroyed.

    engine = LocalEngine(store, fleets.runtime("web"), cache_dir, log=print)
    host = engine.launch("web", "web-1", version)     # QEMU started: overlay, key, seed, ports
    engine.wait_ready(host)                           # SSH answers and boot finished
    engine.destroy(host)                              # QEMU stopped, its directory removed

A host's directory `<fleet runtime>/hosts/<id>/` holds its qcow2 overlay on the published image (the
image itself is only ever read), its own SSH key (a `golden-fleet` login delivered on a NoCloud
seed), qemu.pid, the console log and the QEMU command line. SSH, HTTP (guest port 80) and the node
exporter (9100) are forwarded to free ports on 127.0.0.1 only.
"""

import os
import json
import shutil
import socket
import subprocess
import time
import uuid

import paramiko

from pipeline.errors import GoldenError
from pipeline.fleet.record import now_iso
from pipeline.image import keys, seed
from pipeline.rollout import daemon as procs
from pipeline.util import require_tool, write_json_atomic
from pipeline.vm import qemu

FLEET_USER = "golden-fleet"
GUEST_PORTS = {"ssh": 22, "http": 80, "node": 9100}
MEMORY_MB = 1024


class LocalEngine:
    name = "local"

    def __init__(self, store, runtime_dir, cache_dir, log=print):
        self.store = store
        self.runtime = runtime_dir
        self.cache_dir = cache_dir
        self.log = log

    def image_path(self, version):
        entry = self.store.entry(version)
        return os.path.join(self.store.root, entry["file"])

    def host_dir(self, host_id):
        return os.path.join(self.runtime, "hosts", host_id)

    def new_id(self, slot):
        return f"{slot}-{uuid.uuid4().hex[:6]}"

    def launch(self, fleet, slot, version, host_id=None):
        """Start a guest for `slot` on `version`; returns its host entry (not yet ready)."""
        host_id = host_id or self.new_id(slot)
        image = self.image_path(version)
        d = self.host_dir(host_id)
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        key_path, public = keys.new_keypair(d, FLEET_USER)
        seed_dir = os.path.join(d, "seed")
        seed.write_seed(seed_dir, instance_id=f"golden-{fleet}-{host_id}", hostname=slot, user=FLEET_USER,
                        public_key=public, groups=seed.login_groups())
        iso = seed.make_iso(seed_dir, os.path.join(d, "seed.iso"))
        overlay = os.path.join(d, "overlay.qcow2")
        subprocess.run([require_tool("qemu-img", "qemu-utils"), "create", "-q", "-f", "qcow2", "-F", "qcow2",
                        "-b", image, overlay], check=True, capture_output=True)
        ports = {name: qemu.free_loopback_port() for name in GUEST_PORTS}
        accel = qemu.accelerator(self.cache_dir, image, self.log)
        forwards = ",".join(f"hostfwd=tcp:127.0.0.1:{ports[n]}-:{p}" for n, p in GUEST_PORTS.items())
        argv = [require_tool(qemu.QEMU, "qemu-system-x86"), "-name", f"golden-fleet-{fleet}-{host_id}",
                "-accel", "tcg,thread=multi" if accel == "tcg" else accel, "-cpu", qemu.cpu_model(accel),
                "-m", str(MEMORY_MB), "-smp", "2", "-nodefaults", "-no-user-config", "-display", "none",
                "-serial", f"file:{os.path.join(d, 'console.log')}",
                "-drive", f"file={overlay},if=virtio,format=qcow2",
                "-drive", f"file={iso},if=virtio,media=cdrom,readonly=on,format=raw",
                "-netdev", f"user,id=n0,{forwards}", "-device", "virtio-net-pci,netdev=n0"]
        with open(os.path.join(d, "qemu.cmd"), "w", encoding="utf-8") as fh:
            fh.write(" ".join(argv) + "\n")
        pid_file = os.path.join(d, "qemu.pid")
        proc = procs.spawn(argv, os.path.join(d, "qemu.log"), pid_file)
        host = {"name": slot, "id": host_id, "version": version, "since": now_iso(), "state": "booting",
                "ssh": {"host": "127.0.0.1", "port": ports["ssh"], "user": FLEET_USER, "key": key_path},
                "http": f"http://127.0.0.1:{ports['http']}/", "node_exporter": f"127.0.0.1:{ports['node']}",
                "pid": proc.pid, "dir": d}
        write_json_atomic(os.path.join(d, "host.json"), host)
        self.log(f"{slot}: QEMU started for {version} (host {host_id}, SSH 127.0.0.1:{ports['ssh']})")
        return host

    def alive(self, host):
        return procs.running(os.path.join(host["dir"], "qemu.pid"), "golden-fleet-") is not None

    def wait_ready(self, host, timeout=420):
        """Wait until the host's `golden-fleet` login works and systemd finished booting; returns the
        systemd state (`running`, or `degraded` when a unit failed)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive(host):
                raise GoldenError(f"{host['name']}: QEMU exited before the host answered.\nconsole tail:\n"
                                  f"{qemu.console_tail(os.path.join(host['dir'], 'console.log'))}",
                                  file=os.path.join(host["dir"], "qemu.log"))
            if not _banner(host["ssh"]):      # before sshd answers, QEMU's user network resets connections
                time.sleep(2)
                continue
            try:
                with connect(host["ssh"], timeout=10) as client:
                    rc, out, _ = run(client, "systemctl is-system-running --wait", timeout=max(10, deadline - time.monotonic()))
                    return out.strip()
            except (OSError, EOFError, paramiko.SSHException) as exc:
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(3)
        raise GoldenError(f"{host['name']}: no SSH login within {timeout}s (last attempt: {last}).\nconsole tail:\n"
                          f"{qemu.console_tail(os.path.join(host['dir'], 'console.log'))}")

    def destroy(self, host):
        """Stop the host's QEMU (if it runs) and remove its directory: overlay, key, seed."""
        d = host.get("dir") or self.host_dir(host["id"])
        procs.stop(procs.running(os.path.join(d, "qemu.pid"), "golden-fleet-"), timeout=10)
        shutil.rmtree(d, ignore_errors=True)
        self.log(f"{host['name']}: host {host['id']} ({host.get('version')}) stopped and removed")

    def orphans(self, known_ids):
        """Host directories of this fleet that the fleet record does not list (a crash between a launch
        and the record, or between the record and a destroy)."""
        root = os.path.join(self.runtime, "hosts")
        if not os.path.isdir(root):
            return []
        out = []
        for host_id in sorted(os.listdir(root)):
            if host_id in known_ids:
                continue
            d = os.path.join(root, host_id)
            info = os.path.join(d, "host.json")
            name = host_id.rsplit("-", 1)[0]
            out.append({"name": name, "id": host_id, "dir": d, "version": _version_of(info)})
        return out


def _banner(ssh):
    try:
        with socket.create_connection((ssh["host"], int(ssh["port"])), timeout=5) as s:
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _version_of(info_path):
    try:
        with open(info_path, encoding="utf-8") as fh:
            return json.load(fh).get("version")
    except (OSError, ValueError):
        return None


class connect:
    """A paramiko session to a host's `ssh` entry ({host, port, user, key}), closed when the block ends.

        with connect(host["ssh"]) as client: rc, out, err = run(client, "cat /etc/golden/image.json")
    """

    def __init__(self, ssh, timeout=10):
        self.ssh, self.timeout, self.client = ssh, timeout, None

    def __enter__(self):
        try:
            key = paramiko.PKey.from_path(self.ssh["key"])   # ed25519 for local hosts; any type in an inventory
        except (ValueError, OSError) as exc:
            raise paramiko.SSHException(f"cannot read the key {self.ssh['key']}: {exc}") from None
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            self.client.connect(self.ssh["host"], port=int(self.ssh.get("port", 22)), username=self.ssh["user"],
                                pkey=key, timeout=self.timeout, banner_timeout=self.timeout,
                                auth_timeout=self.timeout, allow_agent=False, look_for_keys=False)
        except BaseException:
            self.client.close()
            raise
        return self.client

    def __exit__(self, *exc):
        self.client.close()
        return False


def run(client, command, timeout=60):
    """(exit status, stdout, stderr) of `command` on the host."""
    _, stdout, stderr = client.exec_command(command, timeout=timeout)
    out = stdout.read().decode("utf-8", "replace")
    err = stderr.read().decode("utf-8", "replace")
    return stdout.channel.recv_exit_status(), out, err
