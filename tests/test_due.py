"""`golden due` on real stores and feeds: the planned cadence, a newer base on the channel an image was
built on, fixes for carried packages, revoked ancestors, and emergencies in what a fleet runs."""

import datetime as dt
import json
import os

import pytest

from pipeline.cli import main
from pipeline.kpi.due import EMERGENCY, PLANNED, due, emergency_cve, exit_code
from pipeline.store import channels
from pipeline.store.revocation import revoke
from pipeline.store.store import Store
from pipeline.supply.feeds import load_feeds
from pipeline.supply.sbom import sbom_from_root

from .imagefixtures import FEEDS, make_root
from .runfixtures import gated_and_signed, make_run

NOW = dt.datetime.now(dt.timezone.utc)
TRACKER = os.path.join(FEEDS, "tracker.json")


def publish(store, tmp_path, version, sbom=None, base=None):
    run = make_run(tmp_path / "runs", version=version, payload=version.encode() * 1000)
    meta = json.loads(open(run.path("run.json")).read())
    meta["created_at"] = NOW.isoformat(timespec="seconds")
    if base:
        meta["base"] = base
    open(run.path("run.json"), "w").write(json.dumps(meta))
    if sbom is not None:
        open(run.path("sbom.cdx.json"), "w").write(json.dumps(sbom))
    store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path / "keys"))
    return version


@pytest.fixture
def sbom(tmp_path):
    return sbom_from_root(make_root(str(tmp_path)), name="linux", version="x", sha256="cd" * 32)


@pytest.fixture
def feeds(tmp_path):
    return load_feeds({"debian-tracker": TRACKER}, str(tmp_path / "cache"))


@pytest.fixture
def empty_feeds(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("{}")
    return load_feeds({"debian-tracker": str(path)}, str(tmp_path / "cache2"))


def test_nothing_is_due_for_a_fresh_image_without_fixes(tmp_path, empty_feeds):
    store = Store(tmp_path / "store")
    publish(store, tmp_path, "golden-linux-2026.11.26+1")
    report = due(store, empty_feeds, NOW)
    assert report["planned"] == report["emergency"] == [] and exit_code(report) == 0


def test_an_image_older_than_its_cadence_is_due(tmp_path, empty_feeds):
    store = Store(tmp_path / "store")
    publish(store, tmp_path, "golden-linux-2026.11.26+1")
    report = due(store, empty_feeds, NOW + dt.timedelta(days=8))
    (row,) = report["images"]
    assert row["due"] == "planned" and exit_code(report) == PLANNED
    assert "the cadence is 7 days" in row["reasons"][0]


def test_fixes_for_carried_packages_make_it_due_and_in_a_fleet_an_emergency(tmp_path, sbom, feeds):
    store = Store(tmp_path / "store")
    version = publish(store, tmp_path, "golden-linux-2026.11.26+1", sbom=sbom)
    report = due(store, feeds, NOW)
    (row,) = report["images"]
    assert row["due"] == "planned" and {f["id"] for f in row["fixes"]} >= {"CVE-2099-1001", "CVE-2099-4001"}
    assert "CVE-2099-1002" not in {f["id"] for f in row["fixes"]}      # installed above its fix
    os.makedirs(store.root + "/fleets")
    open(store.root + "/fleets/web.json", "w").write(json.dumps({"fleet": "web", "versions": [version]}))
    report = due(store, feeds, NOW)
    (row,) = report["images"]
    assert row["due"] == "emergency" and exit_code(report) == EMERGENCY
    urgent = {e["cve"] for e in row["emergency"]}
    assert urgent == {"CVE-2099-1001", "CVE-2099-7001"}                  # high, and unassigned ranks as high
    assert row["emergency"][0]["fleets"] == ["web"] and emergency_cve(row) == "CVE-2099-1001"
    assert due(store, feeds, NOW, urgency="low")["images"][0]["emergency"][-1]["cve"] == "CVE-2099-7001"


def test_a_newer_base_on_the_channel_and_a_revoked_ancestor(tmp_path, empty_feeds):
    store = Store(tmp_path / "store")
    old = publish(store, tmp_path, "golden-linux-2026.11.26+1")
    web = publish(store, tmp_path, "golden-web-2026.11.26+1",
                  base={"channel": "linux/candidate", "version": old, "sha256": store.entry(old)["sha256"],
                        "origin": "published"})
    assert due(store, empty_feeds, NOW)["planned"] == []
    new = publish(store, tmp_path, "golden-linux-2026.11.26+2")
    assert channels.resolve(store, "linux/candidate") == new
    (web_row,) = [r for r in due(store, empty_feeds, NOW)["images"] if r["image"] == "web"]
    assert web_row["due"] == "planned" and f"built on {old}; linux/candidate is now {new}" in web_row["reasons"]
    revoke(store, old, "leaked key")
    (web_row,) = [r for r in due(store, empty_feeds)["images"] if r["image"] == "web"]
    assert any(r.startswith(web) and "leaked key" in r for r in web_row["reasons"]), web_row["reasons"]


def test_every_version_revoked_is_due(tmp_path, empty_feeds):
    store = Store(tmp_path / "store")
    v = publish(store, tmp_path, "golden-linux-2026.11.26+1")
    revoke(store, v, "bad build")
    (row,) = due(store, empty_feeds)["images"]
    assert row["due"] == "planned" and row["reasons"] == ["every published version is revoked"]


def test_the_command_exits_with_what_ci_should_build(tmp_path, sbom, capsys):
    store = Store(tmp_path / "store")
    publish(store, tmp_path, "golden-linux-2026.11.26+1", sbom=sbom)
    args = ["due", "--store", store.root, "--cache", str(tmp_path / "c"), "--feed", f"debian-tracker={TRACKER}"]
    assert main(args) == PLANNED and "CVE-2099-1001" in capsys.readouterr().out
    assert main(args + ["--json"]) == PLANNED and json.loads(capsys.readouterr().out)["planned"] == ["linux"]
    assert main(args + ["--urgency", "severe"]) == 2 and "--urgency" in capsys.readouterr().err
    assert main(args + ["--as-of", "2026-02-30"]) == 2
