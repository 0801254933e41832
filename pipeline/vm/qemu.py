"""Booting images under QEMU: KVM when a probe proves it works, TCG otherwise; always an
ephemeral overlay, so the artifact itself is never written; SSH on loopback only; the VM is
stopped on every exit path.

    with VM(artifact, workdir, seed_iso=iso) as vm:
        vm.wait_ssh(user, key_path)
        vm.run("systemctl is-system-running --wait")
"""

import atexit
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import time

import paramiko

from pipeline.errors import GoldenError
from pipeline.util import require_tool, stop_process

QEMU = "qemu-system-x86_64"
PROBE_SECONDS = 25
_running = set()


def set_death_signal(sig):
    """PR_SET_PDEATHSIG: the child gets `sig` when the driver dies, even by SIGKILL."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)


def die_with_parent(sig=signal.SIGKILL):
    """A preexec_fn: the child gets `sig` when the driver dies, also if the driver died before it ran.

        subprocess.Popen(args, preexec_fn=die_with_parent())
    """
    parent = os.getpid()

    def preexec():
        set_death_signal(sig)
        if os.getppid() != parent:
            os._exit(1)
    return preexec


@atexit.register
def stop_all():
    for vm in list(_running):
        vm.stop()


def qemu_version():
    out = subprocess.run([require_tool(QEMU, "qemu-system-x86"), "--version"],
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


def accelerator(cache_dir, probe_image, log=print):
    """'kvm' if a probe boot shows a kernel starting under KVM within PROBE_SECONDS, else 'tcg'.

    /dev/kvm can exist and still not run a guest kernel (on some hosts QEMU aborts or hangs on
    MSR handling), so the probe boots a real image. The verdict is cached per QEMU and host kernel.
    """
    forced = os.environ.get("GOLDEN_ACCEL")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise GoldenError("must be 'kvm' or 'tcg'", field="GOLDEN_ACCEL")
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    key = f"{qemu_version()} / {os.uname().release}"
    cache = os.path.join(cache_dir, "accel.json")
    try:
        with open(cache, encoding="utf-8") as fh:
            cached = json.load(fh)
        if cached.get("key") == key:
            return cached["accel"]
    except (OSError, ValueError):
        pass
    log(f"probing KVM (up to {PROBE_SECONDS}s) by booting {os.path.basename(probe_image)} read-only")
    verdict = "kvm" if _probe_kvm(probe_image, cache_dir) else "tcg"
    log(f"accelerator: {verdict}")
    os.makedirs(cache_dir, exist_ok=True)
    with open(cache, "w", encoding="utf-8") as fh:
        json.dump({"key": key, "accel": verdict, "probed_at": time.time()}, fh)
    return verdict


def _probe_kvm(image, workdir):
    console = os.path.join(workdir, "kvm-probe.console")
    args = [QEMU, "-accel", "kvm", "-m", "512", "-nodefaults", "-no-user-config", "-display", "none",
            "-snapshot", "-drive", f"file={image},if=virtio,format=qcow2,readonly=on",
            "-serial", f"file:{console}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=die_with_parent())
    try:
        deadline = time.monotonic() + PROBE_SECONDS
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                with open(console, "rb") as fh:
                    if b"Linux version" in fh.read():
                        return True
            except FileNotFoundError:
                pass
        return False
    finally:
        proc.kill()
        proc.wait()
        if os.path.exists(console):
            os.unlink(console)


def cpu_model(accel):
    # Under TCG the default qemu64 CPU lacks the instructions OpenSSL's fast paths use; `max`
    # halves the time cloud-init spends making host keys and speeds every SSH handshake.
    return "host" if accel == "kvm" else "max"


def free_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def console_tail(path, lines=25):
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no console output)"
    return "\n".join(text.splitlines()[-lines:])


class VM:
    """One QEMU guest booted from an ephemeral overlay of `image`."""

    def __init__(self, image, workdir, *, accel, seed_iso=None, name="candidate", memory=1024, cpus=2,
                 extra_args=(), no_reboot=False):
        self.image = os.path.abspath(image)
        self.workdir = os.path.abspath(workdir)
        self.accel = accel
        self.seed_iso = seed_iso
        self.name = name
        self.memory = memory
        self.cpus = cpus
        self.extra_args = list(extra_args)
        self.no_reboot = no_reboot      # a guest reboot makes QEMU exit (see power_cycle)
        self.console = os.path.join(self.workdir, f"{name}-console.log")
        self.overlay = os.path.join(self.workdir, f"{name}-overlay.qcow2")
        self.port = None
        self.proc = None
        self.started_at = None
        self._ssh = None

    def start(self):
        require_tool(QEMU, "qemu-system-x86")
        qemu_img = require_tool("qemu-img", "qemu-utils")
        if not os.path.isfile(self.image):
            raise GoldenError("image not found", file=self.image)
        os.makedirs(self.workdir, exist_ok=True)
        if os.path.exists(self.overlay):
            os.unlink(self.overlay)
        subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", self.image, self.overlay],
                       check=True, capture_output=True)
        self.port = free_loopback_port()
        self._launch(append=False)
        _running.add(self)
        return self

    def _launch(self, append):
        accel = "tcg,thread=multi" if self.accel == "tcg" else self.accel
        args = [QEMU, "-name", self.name, "-accel", accel, "-cpu", cpu_model(self.accel),
                "-m", str(self.memory), "-smp", str(self.cpus),
                "-nodefaults", "-no-user-config", "-display", "none",
                "-chardev", f"file,id=console,path={self.console},append={'on' if append else 'off'}",
                "-serial", "chardev:console",
                "-drive", f"file={self.overlay},if=virtio,format=qcow2",
                "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
                "-device", "virtio-net-pci,netdev=n0"]
        if self.seed_iso:
            args += ["-drive", f"file={self.seed_iso},if=virtio,media=cdrom,readonly=on,format=raw"]
        if self.no_reboot:
            args.append("-no-reboot")
        args += self.extra_args
        with open(os.path.join(self.workdir, f"{self.name}-qemu.cmd"), "a" if append else "w", encoding="utf-8") as fh:
            fh.write(" ".join(args) + "\n")
        log = open(os.path.join(self.workdir, f"{self.name}-qemu.log"), "ab" if append else "wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent(), start_new_session=True)
        log.close()

    def power_cycle(self, timeout):
        """After the guest asked for a reboot (with no_reboot, QEMU exits at the reset): start QEMU
        again on the same overlay, port and seed, the console appended to. A fresh QEMU process
        rather than an emulated reset: under TCG, a guest reset after a loaded session boots at a
        third of the speed (measured: 155 s to SSH against 65 s from a fresh process)."""
        if self._ssh:
            self._ssh.close()
            self._ssh = None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise GoldenError(f"the guest did not shut down within {timeout}s after it was asked to reboot.\n"
                              f"console tail:\n{console_tail(self.console)}", file=self.console) from None
        self._launch(append=True)

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self, what):
        """Raise the "QEMU exited" error, with the console tail, if QEMU is no longer running."""
        if not self.alive:
            raise self._dead(what)

    def _dead(self, what):
        code = self.proc.returncode
        with open(os.path.join(self.workdir, f"{self.name}-qemu.log"), "rb") as fh:
            qemu_out = fh.read().decode("utf-8", "replace").strip()
        return GoldenError(f"QEMU exited (code {code}) {what}.\nQEMU said: {qemu_out or '(nothing)'}\n"
                           f"console tail:\n{console_tail(self.console)}", file=self.console)

    def wait_ssh(self, user, key_path, timeout=420):
        """Wait until `user` can log in with `key_path`; returns seconds since QEMU started."""
        key = paramiko.Ed25519Key.from_private_key_file(key_path)
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self._dead("before SSH answered")
            if not self._banner():
                time.sleep(2)
                continue
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            try:
                client.connect("127.0.0.1", port=self.port, username=user, pkey=key, timeout=5,
                               banner_timeout=15, auth_timeout=15, allow_agent=False, look_for_keys=False)
                client.exec_command("true")[1].channel.recv_exit_status()
                self._ssh = client
                return time.monotonic() - self.started_at
            except (OSError, EOFError, paramiko.SSHException) as exc:
                last = f"{type(exc).__name__}: {exc}"
                client.close()
                time.sleep(2)
        raise GoldenError(f"no SSH login as {user} within {timeout:.0f}s (last attempt: {last}).\n"
                          f"console tail:\n{console_tail(self.console)}", file=self.console)

    def _banner(self):
        """True once sshd itself answers: QEMU's user network accepts and resets connections before."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                return s.recv(8).startswith(b"SSH-")
        except OSError:
            return False

    def run(self, command, timeout=600, check=True):
        """Run a command over the established SSH session: (exit status, stdout, stderr). A session that
        drops under the command (paramiko then reads an empty output and exit status -1, no exception)
        is a failure like any SSH error: "QEMU exited ... console tail" if QEMU is gone or going."""
        self.check_alive(f"before {command!r} could run")
        if self._ssh is None:
            raise GoldenError("no SSH session; call wait_ssh() first")
        try:
            _, stdout, stderr = self._ssh.exec_command(command, timeout=timeout)
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
            status = stdout.channel.recv_exit_status()
            if status == -1 and _connection_closing(self._ssh.get_transport()):
                raise EOFError("the SSH connection closed before the command's exit status came")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=3)       # a dying QEMU drops the connection a moment before it exits
            self.check_alive(f"while {command!r} ran on the guest")
            raise GoldenError(f"SSH to the guest failed while {command!r} ran: {type(exc).__name__}: {exc}") from None
        if check and status != 0:
            raise GoldenError(f"command failed with status {status} on the guest: {command}\n{err.strip()}")
        return status, out, err

    def stop(self):
        if self._ssh:
            self._ssh.close()
            self._ssh = None
        if self.proc:
            stop_process(self.proc, grace=15)
        _running.discard(self)
        if os.path.exists(self.overlay):
            os.unlink(self.overlay)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def _connection_closing(transport, grace=3.0):
    """No exit status came (-1): a command killed by a signal on a live connection, or a connection that
    went down under it. Paramiko's reader may notice the closed socket a moment after the channel ends
    (seen under load): wait up to GRACE seconds for the transport to go before calling it alive."""
    deadline = time.monotonic() + grace
    while transport is not None and transport.is_active():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
