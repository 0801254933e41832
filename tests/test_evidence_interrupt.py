"""Stopping `golden` (issue 10, item 14): SIGINT and SIGTERM both exit 130 and record the stage as
interrupted, also when SIGINT was ignored by the shell that started it; no per-boot private key is
left behind. Real QEMU on a blank disk (it never answers SSH), so the driver is stopped while booting."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.paths import ROOT

from .runfixtures import make_run


def blank_image(path):
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)


@pytest.fixture
def blank_run(tmp_path):
    """A run whose artifact is a blank disk, with a passing earlier attempt."""
    run = make_run(tmp_path / "runs")
    blank_image(run.artifact)
    meta = run.meta | {"spec": os.path.join(ROOT, "images", "golden-linux.yaml")}
    with open(run.path("run.json"), "w") as fh:
        json.dump(meta, fh)
    return run


def golden(tmp_path, *args, cwd=ROOT, ignore_sigint=False):
    os.makedirs(tmp_path / "tmp", exist_ok=True)
    env = dict(os.environ, GOLDEN_ACCEL="tcg", PYTHONPATH=ROOT, TMPDIR=str(tmp_path / "tmp"))
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args, "--runs-dir", str(tmp_path / "runs"),
                             "--store", str(tmp_path / "store"), "--cache", str(tmp_path / "cache")],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None)


def stop_when_booting(proc, sig):
    """Read the driver's log until QEMU is up, then send `sig`; the whole log and the exit code."""
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "waiting for SSH" in line:
                time.sleep(1)
                proc.send_signal(sig)
                break
        code = proc.wait(timeout=60)
        return code, "".join(lines + proc.stderr.readlines())
    finally:
        if proc.poll() is None:      # it did not stop: do not leave it booting
            proc.kill()
            proc.wait()


def qemu_running(directory):
    out = subprocess.run(["pgrep", "-f", f"qemu-system-x86_64 .*{directory}"], capture_output=True, text=True,
                         check=False)
    return out.stdout.split()


@pytest.mark.parametrize("sig,ignored", [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)])
def test_golden_test_stopped_while_booting_exits_130_and_says_interrupted(tmp_path, blank_run, sig, ignored):
    proc = golden(tmp_path, "test", "--run", blank_run.dir, ignore_sigint=ignored)
    code, log = stop_when_booting(proc, sig)
    assert code == 130, log
    assert f"golden: interrupted ({sig.name})" in log
    stages = {s["stage"]: s["status"] for s in json.load(open(blank_run.path("timings.json")))["stages"]}
    assert stages["boot"] == "interrupted", stages
    assert not glob.glob(blank_run.path("**", "*.key"), recursive=True)
    assert not qemu_running(blank_run.dir)
    assert os.path.exists(blank_run.path("attempts", blank_run.meta["attempt"]["previous"], "junit.xml"))


def test_golden_boot_of_an_image_leaves_nothing_in_the_current_directory(tmp_path):
    image = tmp_path / "blank.qcow2"
    blank_image(image)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = golden(tmp_path, "boot", str(image), cwd=cwd)
    code, log = stop_when_booting(proc, signal.SIGINT)
    assert code == 130, log
    assert list(cwd.iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []        # its temporary directory, key and console, removed
