import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.errors import GoldenError
from pipeline.evidence.gate import decide
from pipeline.paths import ROOT
from pipeline.store.store import Store

from .runfixtures import FAILING_JUNIT, gated_and_signed, make_run, signing_key


def test_publish_and_list_in_version_order(tmp_path):
    store = Store(tmp_path / "store")
    for v in ("golden-linux-2026.11.26+10", "golden-linux-2026.11.26+2"):
        run = make_run(tmp_path / "runs", version=v)
        public = gated_and_signed(run, tmp_path)
        entry = store.publish(run, log=lambda m: None, public_key=public)
        assert entry["sha256"] == json.load(open(run.path("gate.json")))["artifact"]["sha256"]
    assert store.versions() == ["golden-linux-2026.11.26+2", "golden-linux-2026.11.26+10"]
    published = tmp_path / "store" / "images" / "golden-linux-2026.11.26+2"
    assert sorted(os.listdir(published)) == ["artifact.json", "expected-hygiene.json", "expected-tests.json",
                                             "gate.json", "golden-linux-2026.11.26+2.qcow2", "hygiene.json",
                                             "junit-hygiene.xml", "junit-reboot.xml", "junit.xml",
                                             "provenance.intoto.jsonl", "reboot.json", "run.json", "scan.json",
                                             "test-result.intoto.jsonl", "test.json"]
    assert entry["signed_by"].startswith("SHA256:") and len(os.listdir(tmp_path / "store" / "keys")) == 1
    assert not os.access(published / "golden-linux-2026.11.26+2.qcow2", os.W_OK) or os.geteuid() == 0
    assert oct(os.stat(published / "gate.json").st_mode & 0o777) == "0o444"


def test_refuses_without_a_gate_record(tmp_path):
    run = make_run(tmp_path / "runs")
    with pytest.raises(GoldenError, match="gate record not found"):
        Store(tmp_path / "store").publish(run, log=lambda m: None)
    assert Store(tmp_path / "store").versions() == []


def test_refuses_an_unsigned_candidate(tmp_path):
    run = make_run(tmp_path / "runs")
    decide(run)
    _, public = signing_key(tmp_path)
    with pytest.raises(GoldenError, match="no signed attestation"):
        Store(tmp_path / "store").publish(run, log=lambda m: None, public_key=public)
    assert Store(tmp_path / "store").versions() == []


def test_refuses_a_signature_by_an_untrusted_key(tmp_path):
    store = Store(tmp_path / "store")
    first = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+1")
    store.publish(first, log=lambda m: None, public_key=gated_and_signed(first, tmp_path / "k1"))
    second = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+2")
    other = gated_and_signed(second, tmp_path / "k2")
    with pytest.raises(GoldenError, match="no trusted key verifies it"):
        store.publish(second, log=lambda m: None, public_key=other)
    assert store.versions() == ["golden-linux-2026.11.26+1"]


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
    public = gated_and_signed(run, tmp_path)
    store.publish(run, log=lambda m: None, public_key=public)
    before = open(store.index_path).read()
    with pytest.raises(GoldenError, match="already published"):
        store.publish(run, log=lambda m: None, public_key=public)
    assert open(store.index_path).read() == before


def test_staging_leftovers_are_swept_but_an_unlisted_sealed_image_is_kept_and_reported(tmp_path):
    store = Store(tmp_path / "store")
    orphan = tmp_path / "store" / "images" / "golden-linux-2026.11.26+9"
    orphan.mkdir(parents=True)
    (orphan / "golden-linux-2026.11.26+9.qcow2").write_bytes(b"sealed by a publish whose index was lost")
    (tmp_path / "store" / ".staging" / "x").mkdir(parents=True)
    assert store.versions() == [] and store.unlisted() == ["golden-linux-2026.11.26+9"]
    run = make_run(tmp_path / "runs")
    store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path))
    assert store.versions() == [run.version]
    assert (orphan / "golden-linux-2026.11.26+9.qcow2").exists()
    assert store.unlisted() == ["golden-linux-2026.11.26+9"]
    assert os.listdir(tmp_path / "store" / ".staging") == []


def test_a_publish_killed_mid_copy_leaves_the_index_intact(tmp_path):
    store_dir = tmp_path / "store"
    store = Store(store_dir)
    first = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+1")
    store.publish(first, log=lambda m: None, public_key=gated_and_signed(first, tmp_path))
    index_before = open(store.index_path).read()
    big = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+2", payload=os.urandom(1 << 20) * 400)
    gated_and_signed(big, tmp_path)
    code = ("import sys; from pipeline.store.store import Store; from pipeline.evidence.rundir import Run;"
            f"Store({str(store_dir)!r}).publish(Run({big.dir!r}), log=lambda m: None)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    staging = store_dir / ".staging"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (staging.exists() and any(staging.iterdir())):
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the publish finished before it could be killed"
    assert open(store.index_path).read() == index_before
    assert store.versions() == ["golden-linux-2026.11.26+1"]
    store.publish(big, log=lambda m: None)          # the next publish sweeps and succeeds (key trusted already)
    assert store.versions() == ["golden-linux-2026.11.26+1", "golden-linux-2026.11.26+2"]
