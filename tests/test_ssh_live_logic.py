"""The live SSH refusal tests (acceptance/test_ssh_live.py), run against a real OpenSSH sshd that this
test starts on 127.0.0.1 with its own config, host key and port: each passes when sshd holds the
baseline, fails when sshd accepts what it must refuse, and fails (never passes) when sshd is stopped: a
closed port, or one that accepts and drops the connection (QEMU's hostfwd with no sshd in the guest)."""

import contextlib
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import acceptance.test_ssh_live as live
from pipeline.checks.baseline import Baseline

SSHD = "/usr/sbin/sshd"
USER = "nobody"     # an account every Debian has; its key is authorised through the temporary config
BASELINE = Baseline.load()


def _strong():
    """sshd settings that hold the baseline: its allowed algorithms, keys only, no root."""
    return {"Ciphers": ",".join(sorted(live.allowed_algorithms(BASELINE, "cipher"))),
            "MACs": ",".join(sorted(live.allowed_algorithms(BASELINE, "mac"))),
            "KexAlgorithms": ",".join(sorted(live.allowed_algorithms(BASELINE, "kex"))),
            "PasswordAuthentication": "no", "KbdInteractiveAuthentication": "no", "PermitRootLogin": "no"}


WEAKENED = {"cipher": {"Ciphers": "aes128-cbc"}, "mac": {"MACs": "hmac-sha1"},
            "kex": {"KexAlgorithms": "diffie-hellman-group14-sha1"}}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSshd:
    """One sshd on 127.0.0.1, no systemd: `start(**settings)`, `stop()`, and the endpoint the tests use.

        sshd.start(PermitRootLogin="prohibit-password"); live.root_login_refused(sshd.endpoint)
    """

    def __init__(self, directory):
        self.dir = directory
        self.proc = None
        self.port = _free_port()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{directory}/host_key"], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{directory}/client_key"], check=True)
        # sshd reads authorized keys as the user, so they live where nobody can read them.
        self.keys = tempfile.mkdtemp(prefix="golden-sshd-keys-")
        os.chmod(self.keys, 0o755)
        for user in (USER, "root"):
            shutil.copy(f"{directory}/client_key.pub", f"{self.keys}/{user}.keys")
            os.chmod(f"{self.keys}/{user}.keys", 0o644)
        self.endpoint = {"hostname": "127.0.0.1", "port": self.port, "user": USER,
                         "identityfile": f"{directory}/client_key"}

    def start(self, **settings):
        self.stop()
        conf = {"ListenAddress": f"127.0.0.1:{self.port}", "HostKey": f"{self.dir}/host_key",
                "PidFile": f"{self.dir}/sshd.pid", "AuthorizedKeysFile": f"{self.keys}/%u.keys",
                "StrictModes": "no", "UsePAM": "no", **_strong(), **settings}
        path = f"{self.dir}/sshd_config"
        with open(path, "w") as fh:
            fh.writelines(f"{k} {v}\n" for k, v in conf.items())
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)   # sshd's privilege separation directory
        with open(f"{self.dir}/sshd.log", "ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", path], stderr=log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    with open(f"{self.dir}/sshd.log") as fh:
                        pytest.fail(f"the local sshd did not start: {fh.read()[-800:]}")
                time.sleep(0.05)

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def sshd(tmp_path):
    if not os.path.exists(SSHD) or os.geteuid() != 0:
        pytest.fail(f"these tests start a real sshd as root: install openssh-server ({SSHD}) and run as root")
    server = LocalSshd(str(tmp_path))
    yield server
    server.stop()
    shutil.rmtree(server.keys)


REFUSALS = {kind: functools.partial(live.test_a_client_offering_only_weak_algorithms_is_refused,
                                    baseline=BASELINE, kind=kind) for kind in ("cipher", "mac", "kex")}
REFUSALS.update(password=live.test_password_authentication_is_refused, root=live.root_login_refused)


@contextlib.contextmanager
def accepts_then_closes():
    """A port that accepts every connection and closes it at once: QEMU's hostfwd when no sshd answers
    in the guest (the old weak-algorithm test counted that as a refusal, and passed)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@contextlib.contextmanager
def closed_port(sshd):
    sshd.start()
    sshd.stop()
    yield sshd.port


STOPPED = {"closed port": closed_port, "accepts then closes": lambda sshd: accepts_then_closes()}


@pytest.mark.parametrize("stopped", sorted(STOPPED))
@pytest.mark.parametrize("check", sorted(REFUSALS))
def test_every_refusal_fails_when_sshd_is_stopped(sshd, check, stopped):
    with STOPPED[stopped](sshd) as port:
        with pytest.raises(AssertionError, match="control: .* could not get in"):
            REFUSALS[check]({**sshd.endpoint, "port": port})


@pytest.mark.parametrize("kind", ["cipher", "mac", "kex"])
def test_weak_algorithm_refusal_passes_on_a_strong_sshd(sshd, kind):
    sshd.start()
    live.test_a_client_offering_only_weak_algorithms_is_refused(sshd.endpoint, BASELINE, kind)


@pytest.mark.parametrize("kind", ["cipher", "mac", "kex"])
def test_weak_algorithm_refusal_fails_when_sshd_accepts_the_weak_one(sshd, kind):
    (setting, weak), = WEAKENED[kind].items()
    sshd.start(**{setting: f"{_strong()[setting]},{weak}"})
    with pytest.raises(AssertionError, match=f"accepted a client offering only weak {kind}: .*{weak}"):
        live.test_a_client_offering_only_weak_algorithms_is_refused(sshd.endpoint, BASELINE, kind)


def test_a_weak_algorithm_refusal_is_the_negotiation_failure_itself(sshd):
    sshd.start()
    with pytest.raises(AssertionError, match="without a cipher negotiation failure"):
        live.negotiation_refused({**sshd.endpoint, "port": _free_port()}, "cipher", "aes128-cbc")
    assert live.negotiation_refused(sshd.endpoint, "cipher", "aes128-cbc")


def test_password_refusal_passes_on_a_key_only_sshd(sshd):
    sshd.start()
    live.test_password_authentication_is_refused(sshd.endpoint)


@pytest.mark.parametrize("setting", ["PasswordAuthentication", "KbdInteractiveAuthentication"])
def test_password_refusal_fails_when_sshd_lets_a_password_be_tried(sshd, setting):
    sshd.start(**{setting: "yes"})
    with pytest.raises(AssertionError, match="sshd lets a client try a password"):
        live.test_password_authentication_is_refused(sshd.endpoint)


def test_root_refusal_passes_on_an_sshd_that_refuses_root(sshd):
    sshd.start()
    assert live.root_login_refused(sshd.endpoint)


def test_root_refusal_fails_when_sshd_lets_root_in_with_a_key(sshd):
    sshd.start(PermitRootLogin="prohibit-password")
    assert not live.root_login_refused(sshd.endpoint)


def test_the_control_needs_the_suite_key_to_get_in(sshd):
    sshd.start()
    os.remove(f"{sshd.keys}/{USER}.keys")
    with pytest.raises(AssertionError, match="control: .* could not get in"):
        live.gets_in(sshd.endpoint)
