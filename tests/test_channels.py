"""Channels and revocation on a real store: promote, rollback, revoke (now, scheduled, inherited), crash safety."""

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from pipeline.cli import main
from pipeline.errors import GoldenError
from pipeline.paths import ROOT
from pipeline.store import channels, hooks
from pipeline.store.revocation import revoke
from pipeline.store.store import Store
from pipeline.supply.verify import explain, verify

from .runfixtures import gated_and_signed, make_run


def publish(store, tmp_path, n, base=None):
    run = make_run(tmp_path / "runs", version=f"golden-linux-2026.11.26+{n}", payload=f"image {n}\n".encode() * 500)
    if base:
        record = json.load(open(run.path("artifact.json")))
        record["base"] = {"sha256": base, "origin": "published image"}
        json.dump(record, open(run.path("artifact.json"), "w"))
    store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path))
    return run.version


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDEN_ACTOR", "release-bot")
    return Store(tmp_path / "store")


def test_publish_puts_a_version_on_candidate_and_promote_records_who_when_why(store, tmp_path, capsys):
    v1, v2 = publish(store, tmp_path, 1), publish(store, tmp_path, 2)
    assert channels.resolve(store, "candidate") == v2
    assert main(["promote", v1, "--channel", "stable", "--reason", "canary clean", "--store", store.root]) == 0
    assert main(["promote", v2, "--channel", "stable", "--reason", "next", "--store", store.root]) == 0
    capsys.readouterr()
    assert main(["channel", "show", "stable", "--json", "--store", store.root]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == v2 and shown["image"] == "linux"
    assert [(h["from"], h["to"], h["by"], h["reason"]) for h in shown["history"]] == [
        (None, v1, "release-bot", "canary clean"), (v1, v2, "release-bot", "next")]
    assert main(["channel", "list", "--store", store.root]) == 0
    assert "linux/stable" in capsys.readouterr().out
    assert [e["action"] for e in store.events()] == ["publish", "publish", "promote", "promote"]
    with pytest.raises(GoldenError, match="not published"):
        channels.promote(store, "golden-linux-2026.11.26+9", "stable", "")
    with pytest.raises(GoldenError, match="already"):
        channels.promote(store, v2, "stable", "")


def test_a_revoked_version_is_never_resolved_promoted_or_verified_and_rollback_passes_over_it(store, tmp_path,
                                                                                              capsys):
    v1, v2, v3 = (publish(store, tmp_path, n) for n in (1, 2, 3))
    for v in (v1, v2, v3):
        channels.promote(store, v, "stable", f"promote {v}")
    assert main(["revoke", v2, "--reason", "CVE-2026-1234 in openssl", "--store", store.root]) == 0
    assert store.entry(v2)["revoked"]["reason"] == "CVE-2026-1234 in openssl"
    with pytest.raises(GoldenError, match="cannot be promoted"):
        channels.promote(store, v2, "canary", "")
    with pytest.raises(GoldenError, match="CVE-2026-1234"):
        store.resolvable(v2)
    findings = {n: (ok, d) for n, ok, d in verify(store, v2)[1]}
    assert findings["revocation"][0] is False and "CVE-2026-1234 in openssl" in findings["revocation"][1]
    assert main(["verify", v2, "--store", store.root]) == 1
    assert "CVE-2026-1234" in capsys.readouterr().err
    assert channels.rollback(store, "stable", "v3 regressed") == v1       # v2 passed over: revoked
    revoke(store, v3, "bad kernel")
    with pytest.raises(GoldenError, match="resolves to nothing: .*candidate|candidate.*resolves to nothing"):
        channels.resolve(store, "candidate")
    with pytest.raises(GoldenError, match="already"):
        revoke(store, v3, "again")
    assert store.resolvable(v1)["version"] == v1


def test_a_scheduled_revocation_takes_effect_at_its_time(store, tmp_path):
    v1 = publish(store, tmp_path, 1)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    revoke(store, v1, "end of support", at=later.isoformat())
    assert channels.resolve(store, "candidate") == v1
    with pytest.raises(GoldenError, match="end of support"):
        channels.resolve(store, "candidate", now=later + dt.timedelta(seconds=1))
    with pytest.raises(GoldenError, match="not an ISO 8601 time"):
        revoke(store, publish(store, tmp_path, 2), "x", at="next tuesday")


def test_revocation_carries_down_to_images_built_on_a_revoked_image(store, tmp_path, capsys):
    parent = publish(store, tmp_path, 1)
    child = publish(store, tmp_path, 2, base=store.entry(parent)["sha256"])
    grandchild = publish(store, tmp_path, 3, base=store.entry(child)["sha256"])
    assert store.resolvable(grandchild)
    revoke(store, parent, "base had a backdoored package")
    for v in (child, grandchild):
        findings = {n: (ok, d) for n, ok, d in verify(store, v)[1]}
        assert findings["revocation"][0] is False and f"descends from revoked {parent}" in findings["revocation"][1]
    assert "base had a backdoored package" in explain(store, grandchild)["unusable"]
    assert main(["list", "--store", store.root]) == 0
    out = capsys.readouterr().out
    assert out.count("REVOKED") == 3


def test_hooks_hear_of_a_revocation_after_it_is_committed(store, tmp_path):
    v1 = publish(store, tmp_path, 1)
    heard = []

    def target(s, version, action, record):
        heard.append((version, action, record["reason"], s.entry(version)["revoked"] == record))
    hooks.register(target)
    try:
        revoke(store, v1, "leaked key")
    finally:
        hooks.unregister(target)
    assert heard == [(v1, "revoke", "leaked key", True)]


CHURN = """
import sys
from pipeline.store import channels
from pipeline.store.store import Store
store, versions = Store(sys.argv[1]), sys.argv[2:]
i = len(store.events())
while True:
    i += 1
    if channels.resolve(store, "stable") != versions[i % len(versions)]:
        channels.promote(store, versions[i % len(versions)], "stable", f"step {i}")
        channels.rollback(store, "stable", f"back {i}")
"""


def _consistent(store):
    index = store.index()             # loads and validates
    for image, chans in index["channels"].items():
        for name, ch in chans.items():
            assert ch["version"] == ch["history"][-1]["to"], (image, name)
    for version, entry in index["images"].items():
        assert os.path.isfile(os.path.join(store.root, entry["file"]))
    events = store.events()
    assert [e["seq"] for e in events] == list(range(1, index["seq"] + 1))
    return index["seq"]


def test_changes_killed_at_random_points_leave_a_consistent_index(store, tmp_path):
    versions = [publish(store, tmp_path, n) for n in (1, 2, 3)]
    channels.promote(store, versions[0], "stable", "first")
    rng = random.Random(12)
    committed = _consistent(store)
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", CHURN, store.root, *versions], cwd=ROOT)
        deadline = time.monotonic() + 120          # the churn has started changing the store: kill it anywhere
        while store.index()["seq"] <= committed and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.random() * 0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        seq = _consistent(store)
        assert seq >= committed
        committed = seq
    assert committed > 5 + 8, "the churn never committed a change before being killed"
    assert channels.rollback(store, "stable", "after the kills") in versions
