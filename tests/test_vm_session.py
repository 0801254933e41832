"""A QEMU that dies under an established SSH session (issue 10, item 11), without QEMU: the session is a
real paramiko login to a local sshd (tests/test_ssh_live_logic.LocalSshd), QEMU a process standing in for
it. A command whose session drops is "QEMU exited ... console tail", never a paramiko traceback nor a
quiet exit status -1; the stages after a death leave no reboot record, least of all an earlier attempt's."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from types import SimpleNamespace

import paramiko
import pytest

from pipeline import stages
from pipeline.errors import GoldenError
from pipeline.evidence.gate import decide
from pipeline.vm import qemu

from .runfixtures import ATTEMPT, make_run
from .test_ssh_live_logic import SSHD, LocalSshd

CONSOLE = "[  OK  ] Reached target multi-user.target\nDebian GNU/Linux 12 candidate ttyS0\ncandidate login: "


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _kill_tree(pid):
    """The sshd this test started and its session processes: the TCP connection drops, as when QEMU dies."""
    for child in _children(pid):
        _kill_tree(child)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _vm(directory, qemu_proc):
    vm = qemu.VM(os.path.join(directory, "candidate.qcow2"), directory, accel="tcg")
    os.makedirs(directory, exist_ok=True)
    with open(vm.console, "w") as fh:
        fh.write(CONSOLE)
    with open(os.path.join(directory, "candidate-qemu.log"), "w") as fh:
        fh.write("qemu-system-x86_64: terminating on signal 9\n")
    vm.proc = qemu_proc
    return vm


@pytest.fixture
def guest(tmp_path):
    """(sshd, a VM whose SSH session is logged in as root to the local sshd); its QEMU is set by the test."""
    if not os.path.exists(SSHD) or os.geteuid() != 0:
        pytest.fail(f"these tests start a real sshd as root: install openssh-server ({SSHD}) and run as root")
    sshd = LocalSshd(str(tmp_path))
    sshd.start(PermitRootLogin="prohibit-password")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=sshd.port, username="root", key_filename=sshd.endpoint["identityfile"],
                   allow_agent=False, look_for_keys=False, timeout=10)
    vm = _vm(str(tmp_path / "vm"), None)
    vm._ssh = client
    procs = []
    yield sshd, vm, procs
    client.close()
    for proc in procs:
        proc.kill()
        proc.wait()
    if sshd.proc is not None:
        _kill_tree(sshd.proc.pid)
        sshd.proc.wait()
        sshd.proc = None
    shutil.rmtree(sshd.keys)


def _qemu(procs, *argv):
    proc = subprocess.Popen(list(argv))
    procs.append(proc)
    return proc


def test_the_session_is_established(guest):
    _, vm, procs = guest
    vm.proc = _qemu(procs, "sleep", "30")
    assert vm.run("echo up") == (0, "up\n", "")


def test_a_command_whose_session_drops_as_qemu_dies_says_qemu_exited(guest):
    """The connection goes under a running command: paramiko reads an empty output and exit status -1,
    with no exception; the command must not pass for one that exited -1 (or, unchecked, printed nothing)."""
    sshd, vm, procs = guest
    vm.proc = _qemu(procs, "sleep", "30")

    def qemu_dies():
        time.sleep(1)
        vm.proc.kill()
        _kill_tree(sshd.proc.pid)
    threading.Thread(target=qemu_dies, daemon=True).start()
    with pytest.raises(GoldenError) as exc:
        vm.run("sleep 20", timeout=60, check=False)
    message = str(exc.value)
    assert "QEMU exited (code -9) while 'sleep 20' ran on the guest." in message, message
    assert "QEMU said: qemu-system-x86_64: terminating on signal 9" in message
    assert message.endswith("console tail:\n" + CONSOLE) and exc.value.file == vm.console


def test_a_command_on_a_session_that_dropped_while_qemu_was_dying_says_qemu_exited(guest):
    """The session is gone but QEMU has not exited yet when the command starts (paramiko raises
    SSHException): VM.run waits for it and reports its exit, not a paramiko traceback."""
    sshd, vm, procs = guest
    _kill_tree(sshd.proc.pid)
    deadline = time.monotonic() + 10
    while vm._ssh.get_transport().is_active() and time.monotonic() < deadline:
        time.sleep(0.05)
    vm.proc = _qemu(procs, "sh", "-c", "sleep 1; kill -9 $$")
    with pytest.raises(GoldenError, match=r"QEMU exited \(code -9\) while 'true' ran on the guest\.(.|\n)*"
                                          r"console tail:\n"):
        vm.run("true")


def test_a_session_that_drops_while_qemu_runs_is_an_ssh_error(guest):
    sshd, vm, procs = guest
    vm.proc = _qemu(procs, "sleep", "60")
    threading.Timer(1, lambda: _kill_tree(sshd.proc.pid)).start()
    with pytest.raises(GoldenError, match="SSH to the guest failed while 'sleep 20' ran: EOFError: the SSH "
                                          "connection closed before the command's exit status came"):
        vm.run("sleep 20", timeout=60)
    assert vm.alive


def test_a_qemu_death_during_the_suite_stops_the_stages_and_leaves_no_reboot_record(tmp_path, monkeypatch):
    """`golden test` on a run with a passing earlier attempt, QEMU dying under the suite: the test stage
    says so with the console tail, the reboot stage never runs, and no reboot record (the new attempt's
    or the earlier one's) is left for the gate."""
    run = make_run(tmp_path / "runs")
    assert os.path.exists(run.path("reboot.json")) and os.path.exists(run.path("junit-reboot.xml"))
    procs = [subprocess.Popen(["sleep", "60"])]
    vm = _vm(str(tmp_path / "vm"), procs[0])
    suites = []

    def suite_under_which_qemu_dies(run, hostspec, spec, log, workers, extra_args=(), exception_paths=None,
                                    alive=None):
        procs[0].kill()
        procs[0].wait()
        record = {"attempt": run.attempt, "exit_code": 1, "status": "interrupted" if not alive() else "finished"}
        with open(run.path("test.json"), "w") as fh:
            json.dump(record, fh)
        suites.append(record)
        return record
    monkeypatch.setattr(stages, "run_suite", suite_under_which_qemu_dies)
    ctx = stages.Context(spec=None, store=None, cache_dir=str(tmp_path / "cache"), log=lambda m: None, run=run)
    ctx.cand = SimpleNamespace(vm=vm, hostspec="paramiko://golden-candidate")
    try:
        with pytest.raises(GoldenError, match=r"QEMU exited \(code -9\) during the suite\.(.|\n)*console tail:\n"):
            stages.run_stages(ctx, ("test", "reboot"))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert suites == [{"attempt": run.attempt, "exit_code": 1, "status": "interrupted"}] and run.attempt != ATTEMPT
    for name in ("reboot.json", "junit-reboot.xml"):
        assert not os.path.exists(run.path(name)), name
        assert os.path.exists(run.path("attempts", ATTEMPT, name)), name
    stages_run = {s["stage"]: s["status"] for s in run.timings()["stages"]}
    assert stages_run == {"test": "failed"}, stages_run
    record = decide(run)
    assert record["decision"] == "fail"
    assert f"no reboot.json (the reboot) from attempt {run.attempt}" in record["reasons"], record["reasons"]
