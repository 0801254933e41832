import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.errors import GoldenError
from pipeline.gate import decide
from pipeline.store import Store

from .runfixtures import FAILING_JUNIT, make_run


def test_publish_and_list_in_version_order(tmp_path):
    store = Store(tmp_path / "store")
    for v in ("golden-linux-2026.11.26+10", "golden-linux-2026.11.26+2"):
        run = make_run(tmp_path / "runs", version=v)
        decide(run)
        entry = store.publish(run, log=lambda m: None)
        assert entry["sha256"] == json.load(open(run.path("gate.json")))["artifact"]["sha256"]
    assert store.versions() == ["golden-linux-2026.11.26+2", "golden-linux-2026.11.26+10"]
    published = tmp_path / "store" / "images" / "golden-linux-2026.11.26+2"
    assert sorted(os.listdir(published)) == ["gate.json", "golden-linux-2026.11.26+2.qcow2", "run.json"]
    assert not os.access(published / "golden-linux-2026.11.26+2.qcow2", os.W_OK) or os.geteuid() == 0
    assert oct(os.stat(published / "gate.json").st_mode & 0o777) == "0o444"


def test_refuses_without_a_gate_record(tmp_path):
    run = make_run(tmp_path / "runs")
    with pytest.raises(GoldenError, match="gate record not found"):
        Store(tmp_path / "store").publish(run, log=lambda m: None)
    assert Store(tmp_path / "store").versions() == []


def test_refuses_a_failed_gate(tmp_path):
    run = make_run(tmp_path / "runs", junit=FAILING_JUNIT, test_exit=1)
    decide(run)
    with pytest.raises(GoldenError, match="the gate did not pass"):
        Store(tmp_path / "store").publish(run, log=lambda m: None)
    assert not os.path.exists(tmp_path / "store" / "images")


def test_refuses_when_the_digest_does_not_match(tmp_path):
    run = make_run(tmp_path / "runs")
    decide(run)
    with open(run.artifact, "r+b") as fh:
        fh.write(b"X")
    with pytest.raises(GoldenError, match="gate record is for sha256"):
        Store(tmp_path / "store").publish(run, log=lambda m: None)
    assert Store(tmp_path / "store").versions() == []


def test_published_versions_are_immutable(tmp_path):
    store = Store(tmp_path / "store")
    run = make_run(tmp_path / "runs")
    decide(run)
    store.publish(run, log=lambda m: None)
    before = open(store.index_path).read()
    with pytest.raises(GoldenError, match="already published"):
        store.publish(run, log=lambda m: None)
    assert open(store.index_path).read() == before


def test_leftovers_of_a_crashed_publish_are_not_published_and_are_swept(tmp_path):
    store = Store(tmp_path / "store")
    orphan = tmp_path / "store" / "images" / "golden-linux-2026.11.26+1"
    orphan.mkdir(parents=True)
    (orphan / "half.qcow2").write_bytes(b"half")
    (tmp_path / "store" / ".staging" / "x").mkdir(parents=True)
    assert store.versions() == []
    run = make_run(tmp_path / "runs")
    decide(run)
    store.publish(run, log=lambda m: None)
    assert store.versions() == [run.version]
    assert not (orphan / "half.qcow2").exists()
    assert os.listdir(tmp_path / "store" / ".staging") == []


def test_a_publish_killed_mid_copy_leaves_the_index_intact(tmp_path):
    store_dir = tmp_path / "store"
    store = Store(store_dir)
    first = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+1")
    decide(first)
    store.publish(first, log=lambda m: None)
    index_before = open(store.index_path).read()
    big = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+2", payload=os.urandom(1 << 20) * 400)
    decide(big)
    code = ("import sys; from pipeline.store import Store; from pipeline.rundir import Run;"
            f"Store({str(store_dir)!r}).publish(Run({big.dir!r}), log=lambda m: None)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)))
    staging = store_dir / ".staging"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (staging.exists() and any(staging.iterdir())):
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the publish finished before it could be killed"
    assert open(store.index_path).read() == index_before
    assert store.versions() == ["golden-linux-2026.11.26+1"]
    store.publish(big, log=lambda m: None)          # the next publish sweeps and succeeds
    assert store.versions() == ["golden-linux-2026.11.26+1", "golden-linux-2026.11.26+2"]
