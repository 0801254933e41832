"""The rollout controller's refusals (nothing touched), its persisted state, and the fleet store it writes."""

import json
import os

import pytest

from pipeline.cli import main
from pipeline.errors import GoldenError
from pipeline.fleet.record import Fleet, Fleets
from pipeline.image.keys import new_keypair
from pipeline.rollout.state import COMPLETED, DONE, ROLLBACK, State
from pipeline.store.revocation import revoke
from pipeline.store.store import Store

from .runfixtures import gated_and_signed, make_run

POLICY = os.path.join(os.path.dirname(__file__), "data", "rollout-e2e.yaml")


def publish(store, tmp_path, n):
    run = make_run(tmp_path / "runs", version=f"golden-linux-2026.11.26+{n}", payload=f"image {n}\n".encode() * 500)
    store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path))
    return run.version


@pytest.fixture
def fleet(tmp_path):
    """A store with two published versions and a recorded local fleet of two hosts on the first."""
    store = Store(tmp_path / "store")
    v1, v2 = publish(store, tmp_path, 1), publish(store, tmp_path, 2)
    fleets = Fleets(store.root, tmp_path / "fleets")
    hosts = [{"name": f"app-{i}", "id": f"app-{i}-000000", "version": v1, "since": "2026-11-26T10:00:00+00:00",
              "state": "active", "dir": str(tmp_path / "fleets" / "app" / "hosts" / f"app-{i}-000000")} for i in (1, 2)]
    fleets.save(Fleet("app", "local", "linux", "general-purpose", "2026-11-26T10:00:00+00:00", hosts))
    return store, fleets, v1, v2


def rollout(store, fleets, *args):
    return main(["rollout", "app", *args, "--policy", POLICY, "--store", store.root, "--fleets-dir", fleets.runtime_root])


def untouched(fleets, before):
    return (json.load(open(fleets.path("app"))) == before
            and not os.path.exists(os.path.join(fleets.runtime_root, "app", "hosts")))


def test_versions_that_may_not_be_rolled_out_are_refused_with_nothing_touched(fleet, tmp_path, capsys):
    store, fleets, v1, v2 = fleet
    before = json.load(open(fleets.path("app")))
    assert rollout(store, fleets, "--to", "golden-linux-2026.11.26+9") == 2
    assert "not published" in capsys.readouterr().err
    revoke(store, v2, "CVE-2099-0001 exploited in the wild")
    assert rollout(store, fleets, "--to", v2) == 2
    assert "revoked" in capsys.readouterr().err and untouched(fleets, before)
    v3 = publish(store, tmp_path, 3)
    os.chmod(os.path.join(store.root, "index.json"), 0o644)
    gate = os.path.join(store.root, "images", v3, "gate.json")
    os.chmod(os.path.dirname(gate), 0o755)
    os.chmod(gate, 0o644)
    record = json.load(open(gate))
    record["decision"] = "fail"
    json.dump(record, open(gate, "w"))
    assert rollout(store, fleets, "--to", v3) == 2
    assert "does not verify" in capsys.readouterr().err and untouched(fleets, before)
    assert rollout(store, fleets) == 2 and "--to VERSION" in capsys.readouterr().err
    assert main(["rollout", "nope", "--to", v2, "--store", store.root, "--fleets-dir", fleets.runtime_root]) == 2
    assert "no fleet named 'nope'" in capsys.readouterr().err


def test_a_bad_policy_is_refused_before_any_host_is_touched(fleet, tmp_path, capsys):
    store, fleets, v1, _ = fleet
    before = json.load(open(fleets.path("app")))
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(POLICY).read().replace("{name: canary, hosts: 1, bake: 20s}", "{name: canary, hosts: 0, bake: 20s}"))
    v2 = fleet[3]
    assert main(["rollout", "app", "--to", v2, "--policy", str(bad), "--store", store.root,
                 "--fleets-dir", fleets.runtime_root]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "waves[0].hosts" in err, err
    assert untouched(fleets, before)


def test_two_changes_of_one_fleet_at_once_are_refused(fleet, capsys):
    store, fleets, _, v2 = fleet
    before = json.load(open(fleets.path("app")))
    with fleets.lock("app", "rollout of app to something"):
        assert rollout(store, fleets, "--to", v2) == 2
    err = capsys.readouterr().err
    assert "fleet app is busy: rollout of app to something" in err and untouched(fleets, before)


def test_an_unfinished_rollout_must_be_resumed_before_another_starts(fleet, capsys):
    store, fleets, v1, v2 = fleet
    state = State(fleets.runtime("app"))
    rid = state.create(fleet="app", kind="rollout", to=v2, originals={"app-1": v1, "app-2": v1}, plan={"waves": []},
                       policy=POLICY, emergency=None)
    seq = state.intend(rid, "replace", wave="canary", host="app-1", detail={"new_id": "app-1-abcdef"})
    assert [s["seq"] for s in state.pending(rid)] == [seq]
    assert rollout(store, fleets, "--to", v2) == 2
    assert f"rollout {rid} of app did not finish" in capsys.readouterr().err
    state.done(seq)
    state.update(rid, phase=ROLLBACK, failure={"wave": "canary", "metric": "error_rate", "value": 0.3})
    again = State(fleets.runtime("app"))           # what a new controller process reads
    r = again.unfinished()
    assert r["id"] == rid and r["phase"] == ROLLBACK and r["failure"]["metric"] == "error_rate"
    assert not again.pending(rid)
    again.update(rid, phase=DONE, result=COMPLETED)
    assert again.unfinished() is None and [h["id"] for h in again.history()] == [rid]


def test_the_fleet_store_recomputes_versions_and_rejects_bad_names_and_records(fleet, tmp_path):
    store, fleets, v1, v2 = fleet
    f = fleets.load("app")
    f.hosts[0]["version"] = v2
    fleets.save(f)
    assert json.load(open(fleets.path("app")))["versions"] == sorted([v1, v2])
    assert fleets.names() == ["app"]
    with pytest.raises(GoldenError, match="lowercase"):
        fleets.load("App_1")
    open(fleets.path("broken"), "w").write('{"fleet": "broken"}')
    with pytest.raises(GoldenError, match="not a fleet record"):
        fleets.load("broken")
    with pytest.raises(GoldenError, match="no host 'app-9'"):
        f.host("app-9")


def test_an_emergency_rollout_needs_a_published_fix_of_its_cve(fleet, capsys):
    store, fleets, _, v2 = fleet
    before = json.load(open(fleets.path("app")))
    assert rollout(store, fleets, "--to", v2, "--emergency", "CVE-2099-0001") == 2
    err = capsys.readouterr().err
    assert f"{v2} is not a published fix of CVE-2099-0001" in err and untouched(fleets, before)


def test_an_inventory_fleet_is_observed_not_replaced(tmp_path, capsys):
    """Existing SSH hosts from an inventory: a host nobody answers for is unhealthy and has no version, and
    golden refuses to replace it; a bad inventory names its file and field."""
    store = Store(tmp_path / "store")
    fleets = Fleets(store.root, tmp_path / "fleets")
    key = tmp_path / "id_ed25519"
    key.write_text("not used: nothing listens on the port\n")
    inventory = tmp_path / "hosts.yaml"
    real_key, _ = new_keypair(tmp_path, "ops")
    inventory.write_text(f"image: linux\nrole: general-purpose\nhosts:\n  - {{name: app-1, host: 127.0.0.1, port: 1, "
                         f"user: ops, key: {key}}}\n  - {{name: app-2, host: 127.0.0.1, port: 1, user: ops, key: {real_key}}}\n")
    common = ["--store", store.root, "--fleets-dir", fleets.runtime_root]
    assert main(["fleet", "create", "legacy", "--inventory", str(inventory), *common]) == 0
    capsys.readouterr()
    assert main(["fleet", "status", "legacy", "--json", *common]) == 1
    host, other = json.loads(capsys.readouterr().out)["hosts"]
    assert host["version"] is None and not host["healthy"] and "cannot read the key" in host["problems"][0]
    assert other["version"] is None and not other["healthy"] and "no SSH login" in other["problems"][0]
    assert main(["rollout", "legacy", "--to", "golden-linux-2026.11.26+1", "--policy", POLICY, *common]) == 2
    assert "not published" in capsys.readouterr().err
    inventory.write_text(f"image: linux\nhosts:\n  - {{name: app-1, host: 127.0.0.1, user: ops, key: {tmp_path}/nope}}\n")
    assert main(["fleet", "create", "legacy2", "--inventory", str(inventory), *common]) == 2
    err = capsys.readouterr().err
    assert str(inventory) in err and "hosts[0].key" in err and "no such key file" in err


def test_destroy_removes_the_hosts_a_killed_create_left_without_a_record(tmp_path, capsys):
    store = Store(tmp_path / "store")
    fleets = Fleets(store.root, tmp_path / "fleets")
    left = tmp_path / "fleets" / "web" / "hosts" / "web-1-abcdef"
    left.mkdir(parents=True)
    (left / "overlay.qcow2").write_bytes(b"x")
    common = ["--store", store.root, "--fleets-dir", fleets.runtime_root]
    assert main(["fleet", "destroy", "web", *common]) == 0
    assert not left.exists() and "had no record" in capsys.readouterr().err
    assert main(["fleet", "destroy", "web", *common]) == 2
    assert "no fleet named 'web'" in capsys.readouterr().err
