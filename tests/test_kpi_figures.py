"""`golden kpi` on a recorded store: the fleet and rollout records in the contract's shape (tests/data/kpi/),
three published versions, and the packages a real guest reported (recorded by tests/test_kpi_drift_live.py).
Also the store the other KPI tests build on, and the command's bad input."""

import datetime as dt
import json
import os
import shutil

import pytest

from pipeline.cli import main
from pipeline.kpi import figures
from pipeline.kpi.budget import BUDGET_EXCEEDED
from pipeline.kpi.drift import parse_dpkg_query
from pipeline.store.store import Store

from .runfixtures import gated_and_signed, make_run

DATA = os.path.join(os.path.dirname(__file__), "data", "kpi")
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)
AS_OF = ["--as-of", "2026-12-02"]             # noon UTC, as NOW
V1, V2, V3 = "golden-web-2026.11.10+1", "golden-web-2026.11.24+1", "golden-web-2026.12.01+1"
CREATED = {V1: "2026-11-10T08:00:00+00:00", V2: "2026-11-24T06:00:00+00:00", V3: "2026-12-01T07:00:00+00:00"}
BUILD_SECONDS = 300                           # base 100 s + build 200 s of each recorded run
POLICY = os.path.join(DATA, "policy-web.yaml")


def recorded(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as fh:
        return fh.read()


def publish(store, tmp_path, version, created_at):
    run = make_run(tmp_path / "runs", version=version, payload=version.encode() * 1000)
    meta = json.loads(open(run.path("run.json")).read())
    meta["created_at"] = created_at
    open(run.path("run.json"), "w").write(json.dumps(meta))
    open(run.path("timings.json"), "w").write(json.dumps({"stages": [
        {"stage": "base", "seconds": 100.0, "status": "passed"},
        {"stage": "build", "seconds": 200.0, "status": "passed"},
        {"stage": "test", "seconds": 50.0, "status": "passed"}]}))
    shutil.copy(os.path.join(DATA, "sbom.cdx.json"), run.path("sbom.cdx.json"))
    store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path / "keys"))


def recorded_store(tmp_path):
    """A store with V1..V3 published, the recorded fleet `web` and its three rollouts (governed by POLICY)."""
    store = Store(tmp_path / "store")
    for version, created in CREATED.items():
        publish(store, tmp_path, version, created)
    os.makedirs(os.path.join(store.root, "fleets"))
    shutil.copy(os.path.join(DATA, "fleet-web.json"), os.path.join(store.root, "fleets", "web.json"))
    for rid in os.listdir(os.path.join(DATA, "rollouts", "web")):
        add_rollout(store, json.loads(recorded(os.path.join("rollouts", "web", rid, "rollout.json"))
                                      .replace("@POLICY@", POLICY)))
    return store


def add_rollout(store, record):
    d = os.path.join(store.root, "rollouts", record["fleet"], record["id"])
    os.makedirs(d)
    with open(os.path.join(d, "rollout.json"), "w", encoding="utf-8") as fh:
        json.dump(record, fh)


def observed():
    """What the hosts of `web` answered: web-1 as booted, web-2 patched by hand, web-3 not at all."""
    return {("web", "web-1"): parse_dpkg_query(recorded("dpkg-query-clean.txt")),
            ("web", "web-2"): parse_dpkg_query(recorded("dpkg-query-patched.txt")),
            ("web", "web-3"): "ssh: cannot ask golden-fleet@127.0.0.1:40021 for its packages: "
                              "NoValidConnectionsError: [Errno None] Unable to connect to port 40021 on 127.0.0.1"}


@pytest.fixture
def store(tmp_path):
    return recorded_store(tmp_path)


def test_every_kpi_of_the_recorded_fleet(store):
    report = figures.figures(store, figures.select_fleets(store, "web"), observed(), NOW)
    (age,) = report["image_age"]
    assert age["max_seconds"] == (NOW - dt.datetime.fromisoformat(CREATED[V2])).total_seconds() - BUILD_SECONDS
    (drift,) = report["drift"]["fleets"]
    assert drift["drifted"] == ["web-2"] and drift["unknown"] == ["web-3"]
    (budget,) = report["failure_budget"]
    assert budget["current"]["started"] == 3 and budget["current"]["rolled_back"] == 1 and not budget["exceeded"]
    assert figures.exit_code(report) == 0


def test_the_command_reports_and_exits_12_when_the_budget_is_exceeded(store, capsys):
    args = ["kpi", "--store", store.root, *AS_OF]
    assert main(args + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fleets"] == ["web"] and report["budget_exceeded"] == []
    web3 = report["drift"]["fleets"][0]["hosts"][2]
    assert web3["state"] == "unknown" and "127.0.0.1:40021" in web3["reason"]     # nothing listens: not clean
    second = json.loads(recorded("rollouts/web/20261128T090000Z-c3d4/rollout.json").replace("@POLICY@", POLICY))
    second.update(id="20261130T090000Z-0bad", started_at="2026-11-30T09:00:00+00:00",
                  finished_at="2026-11-30T09:20:00+00:00")
    add_rollout(store, second)
    assert main(args) == BUDGET_EXCEEDED
    out, err = capsys.readouterr()
    assert "ratio 0.5, budget 0.4 EXCEEDED" in out and "fleet web exceeded its failure budget: 2 of 4" in err


@pytest.mark.parametrize("extra, message", [
    (["--fleet", "db"], "no fleet named 'db' (fleets: web)"),
    (["--fleet", "Web Servers"], "fleet: a fleet name is lowercase"),
    (["--since", "2026-02-30"], "--since: must be a date YYYY-MM-DD, not '2026-02-30'"),
    (["--since", "2026-12-03"], "--since: 2026-12-03 is after the day judged (2026-12-02)"),
    (["--as-of", "yesterday"], "--as-of: must be a date"),
])
def test_bad_input_is_a_clear_error_and_exit_2(store, capsys, extra, message):
    assert main(["kpi", "--store", store.root, *AS_OF, *extra]) == 2
    assert message in capsys.readouterr().err


def test_a_malformed_rollout_record_names_its_file(store, capsys):
    add_rollout(store, {"id": "x", "fleet": "web", "started_at": "2026-12-01T00:00:00+00:00", "result": "done"})
    assert main(["kpi", "--store", store.root, *AS_OF]) == 2
    err = capsys.readouterr().err
    assert "rollouts/web/x/rollout.json: result: result must be one of completed" in err


def test_an_emergency_outlives_its_fleet_and_is_left_out_only_for_another_fleet(store, capsys):
    """The MTTR of an emergency whose fleet was destroyed since (the fleet end-to-end test destroys its own)
    is still reported; `--fleet web` leaves out an emergency that only affected `db`."""
    from pipeline.kpi import emergencies
    emergencies.note_detected(store, "CVE-2099-0007", version=V1, fleets=["db"], at="2026-12-01T08:00:00+00:00",
                              package="netbase", fixed_version="6.4+golden1", urgency="high")
    emergencies.note_rebuilt(store, "CVE-2099-0007", V3, started_at="2026-12-01T08:01:00+00:00",
                             at="2026-12-01T08:15:00+00:00")
    emergencies.note_published(store, "CVE-2099-0007", V3, at="2026-12-01T08:15:10+00:00")
    emergencies.note_rolled_out(store, "CVE-2099-0007", "db", V3, at="2026-12-01T08:40:10+00:00")
    assert main(["kpi", "--store", store.root, *AS_OF, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["mttr"]["emergencies"]
    assert row["cve"] == "CVE-2099-0007" and row["state"] == "closed" and row["seconds"] == 2410.0
    assert row["phases"] == {"rebuilt": 900.0, "published": 10.0, "rolled_out": 1500.0}
    assert main(["kpi", "--store", store.root, *AS_OF, "--fleet", "web", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mttr"]["emergencies"] == []
