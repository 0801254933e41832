"""A QEMU that dies under the suite (issue 10, item 11): a clear "QEMU exited" error with the console
tail, never a paramiko traceback; the session's record says interrupted and the gate fails. A real
QEMU on a blank disk, killed."""

import json
import signal

import pytest

from pipeline import stages
from pipeline.errors import GoldenError
from pipeline.evidence import attempt
from pipeline.evidence.gate import decide
from pipeline.evidence.suite import run_pytest
from pipeline.vm import qemu
from pipeline.vm.boot import Candidate

from .runfixtures import make_run
from .test_evidence_interrupt import blank_image


@pytest.fixture
def dead_vm(tmp_path):
    image = tmp_path / "blank.qcow2"
    blank_image(image)
    vm = qemu.VM(image, tmp_path / "boot", accel="tcg", no_reboot=True).start()
    vm.proc.send_signal(signal.SIGKILL)
    vm.proc.wait()
    yield vm
    vm.stop()


def test_a_command_on_a_dead_guest_says_qemu_exited(dead_vm):
    with pytest.raises(GoldenError, match=r"QEMU exited \(code -9\) before 'true' could run") as exc:
        dead_vm.run("true")
    assert "console tail:" in str(exc.value)


def test_the_reboot_stage_after_a_qemu_death_is_a_clear_stage_error(tmp_path, dead_vm):
    ctx = stages.Context(spec=None, store=None, cache_dir=str(tmp_path / "cache"), log=print,
                         run=make_run(tmp_path / "runs"))
    ctx.cand = Candidate(dead_vm, str(tmp_path / "key"), str(tmp_path / "ssh_config"), "0" * 64)
    with pytest.raises(GoldenError, match=r"QEMU exited \(code -9\) before the reboot"):
        stages.run_stages(ctx, ("reboot",))
    timings = {s["stage"]: s["status"] for s in ctx.run.timings()["stages"]}
    assert timings["reboot"] == "failed"


def test_a_session_under_which_qemu_died_is_interrupted_and_fails_the_gate(tmp_path, dead_vm):
    run = make_run(tmp_path / "runs")
    attempt.start(run)
    suite = tmp_path / "test_fine.py"
    suite.write_text("def test_fine():\n    pass\n")
    record = run_pytest(run, [str(suite)], "test", print, alive=lambda: dead_vm.alive)
    assert record["exit_code"] == 0 and record["status"] == "interrupted"
    assert json.load(open(run.path("test.json")))["cause"] == "the candidate's QEMU exited during the session"
    assert any("QEMU exited during the session" in r for r in decide(run)["reasons"])
