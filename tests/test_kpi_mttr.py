"""MTTR of an emergency from the store's ledger: detected by `golden due`, rebuilt and published by
`golden run --emergency`, rolled out per fleet by the rollout controller; open until every affected fleet is."""

import datetime as dt
import json
import os
import re

import pytest

from pipeline.cli import main
from pipeline.errors import GoldenError
from pipeline.kpi import emergencies
from pipeline.kpi.emergencies import load, mttr, summary
from pipeline.kpi.emergencies import note_detected, note_published, note_rebuilt, note_rolled_out
from pipeline.store.store import Store
from pipeline.supply.sbom import sbom_from_root

from .imagefixtures import FEEDS, make_root
from .test_due import publish
from .test_kpi_figures import AS_OF, NOW, V2, V3

CVE = "CVE-2099-1001"
T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)


def minutes(n):
    return T0 + dt.timedelta(minutes=n)


def emergency(store, fleets=("web",)):
    note_detected(store, CVE, version=V2, fleets=list(fleets), at=T0, package="openssl", urgency="high")
    note_rebuilt(store, CVE, V3, started_at=minutes(5), at=minutes(40))
    note_published(store, CVE, V3, at=minutes(42))


def test_closed_when_every_affected_fleet_is_rolled_out(tmp_path):
    store = Store(tmp_path / "store")
    emergency(store, fleets=("web", "api"))
    note_rolled_out(store, CVE, "web", V3, "2026-12-01T09:30:00+00:00")
    row = mttr(load(store, CVE), NOW)
    assert row["state"] == "open" and row["waiting"] == ["api"]
    assert row["seconds"] == (NOW - T0).total_seconds()                # elapsed while open
    assert row["phases"] == {"rebuilt": 2400.0, "published": 120.0}
    note_rolled_out(store, CVE, "api", V3, minutes(100))
    row = mttr(load(store, CVE), NOW)
    assert row["state"] == "closed" and row["seconds"] == 6000.0 and row["waiting"] == []
    assert row["phases"] == {"rebuilt": 2400.0, "published": 120.0, "rolled_out": 3480.0}
    assert sum(row["phases"].values()) == row["seconds"]


def test_a_fleet_found_affected_later_reopens_nothing_already_detected(tmp_path):
    store = Store(tmp_path / "store")
    emergency(store)
    note_detected(store, CVE, version=V2, fleets=["web"], at=minutes(30))      # the next `golden due`: no change
    note_detected(store, CVE, version=V2, fleets=["web", "batch"], at=minutes(60))
    ledger = load(store, CVE)
    assert [p["phase"] for p in ledger["phases"]] == ["detected", "rebuilt", "published", "affected"]
    assert ledger["phases"][0]["at"] == "2026-12-01T08:00:00+00:00"
    note_rolled_out(store, CVE, "web", V3, minutes(90))
    assert mttr(load(store, CVE), NOW)["waiting"] == ["batch"]


def test_a_rollout_of_a_version_that_is_not_a_published_fix_is_refused(tmp_path):
    store = Store(tmp_path / "store")
    emergency(store)
    with pytest.raises(GoldenError, match=re.escape(f"{V2} is not a published fix of {CVE}")):
        note_rolled_out(store, CVE, "web", V2, minutes(90))
    assert [p["phase"] for p in load(store, CVE)["phases"]] == ["detected", "rebuilt", "published"]


def test_without_a_recorded_detection_it_counts_from_the_rebuild_and_says_so(tmp_path):
    store = Store(tmp_path / "store")
    note_rebuilt(store, CVE, V3, started_at=minutes(5), at=minutes(40))
    note_published(store, CVE, V3, at=minutes(42))
    note_rolled_out(store, CVE, "web", V3, minutes(65))
    row = mttr(load(store, CVE), NOW)
    assert row["state"] == "closed" and not row["detection_recorded"] and row["seconds"] == 3600.0


def test_bad_ids_and_malformed_ledgers_are_errors(tmp_path):
    store = Store(tmp_path / "store")
    with pytest.raises(GoldenError, match="is not an advisory id"):
        note_published(store, "../index", V3)
    os.makedirs(os.path.join(store.root, "emergencies"))
    bad = os.path.join(store.root, "emergencies", f"{CVE}.json")
    open(bad, "w").write(json.dumps({"cve": CVE, "phases": [{"phase": "fixed", "at": "2026-12-01T08:00:00Z"}]}))
    with pytest.raises(GoldenError, match=r"phases\[0\]: must be one of detected"):
        emergencies.load_all(store)


def test_since_and_fleet_select_the_emergencies(tmp_path):
    store = Store(tmp_path / "store")
    emergency(store)
    note_detected(store, "CVE-2099-2002", version=V2, fleets=["api"], at=minutes(-3 * 24 * 60))
    ledgers = emergencies.load_all(store)
    assert {r["cve"] for r in summary(ledgers, NOW)["emergencies"]} == {CVE, "CVE-2099-2002"}
    assert [r["cve"] for r in summary(ledgers, NOW, since=minutes(-60))["emergencies"]] == [CVE]
    assert [r["cve"] for r in summary(ledgers, NOW, fleets={"api"})["emergencies"]] == ["CVE-2099-2002"]


@pytest.fixture
def affected_store(tmp_path):
    """V2 published with packages the recorded feed has fixes for, run by fleet `web`."""
    store = Store(tmp_path / "store")
    publish(store, tmp_path, V2, sbom=sbom_from_root(make_root(str(tmp_path / "root")), name="web", version=V2,
                                                     sha256="cd" * 32))
    os.makedirs(os.path.join(store.root, "fleets"))
    open(os.path.join(store.root, "fleets", "web.json"), "w").write(json.dumps({
        "fleet": "web", "engine": "inventory", "image": "web", "role": "web", "created_at": T0.isoformat(),
        "versions": [V2], "hosts": [{"name": "web-1", "version": V2, "since": T0.isoformat(), "state": "active"}]}))
    return store


def test_golden_due_notes_the_detection_once_and_kpi_reports_it_open(affected_store, tmp_path, capsys):
    store = affected_store
    due = ["due", "--store", store.root, "--cache", str(tmp_path / "c"), "--feed",
           f"debian-tracker={os.path.join(FEEDS, 'tracker.json')}"]
    assert main(due + AS_OF) == 11 and load(store, CVE) is None          # judging another day detects nothing
    assert main(due) == 11
    first = load(store, CVE)
    assert [(p["phase"], p["fleets"], p["version"]) for p in first["phases"]] == [("detected", ["web"], V2)]
    assert main(due) == 11 and load(store, CVE) == first                 # detected once
    capsys.readouterr()
    assert main(["kpi", "--store", store.root, "--json"]) == 0
    (row,) = [e for e in json.loads(capsys.readouterr().out)["mttr"]["emergencies"] if e["cve"] == CVE]
    assert row["state"] == "open" and row["waiting"] == ["web"] and row["detection_recorded"]
