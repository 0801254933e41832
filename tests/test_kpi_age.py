"""Image age of the recorded fleet: per host and per fleet from each image's build time in the store, hosts on
revoked or deprecated versions called out, and the age over time replayed from the rollouts."""

import datetime as dt
import os
import shutil

from pipeline.kpi.age import built_at, history, image_age, timeline
from pipeline.kpi.budget import load_rollouts
from pipeline.kpi.figures import select_fleets
from pipeline.store import lifecycle
from pipeline.store.revocation import revoke

from .test_kpi_figures import BUILD_SECONDS, CREATED, NOW, V1, V2, V3, recorded_store


def age_at(when, version):
    return (when - dt.datetime.fromisoformat(CREATED[version])).total_seconds() - BUILD_SECONDS


def test_age_per_host_and_fleet_from_the_build_time(tmp_path):
    store = recorded_store(tmp_path)
    assert built_at(store, V2) == dt.datetime.fromisoformat(CREATED[V2]) + dt.timedelta(seconds=BUILD_SECONDS)
    (fleet,) = image_age(store, select_fleets(store), NOW)
    assert [(h["host"], h["age_seconds"]) for h in fleet["hosts"]] == \
        [("web-1", age_at(NOW, V3)), ("web-2", age_at(NOW, V3)), ("web-3", age_at(NOW, V2))]
    assert fleet["median_seconds"] == age_at(NOW, V3) and fleet["max_seconds"] == age_at(NOW, V2)
    assert fleet["callouts"] == []


def test_hosts_on_deprecated_or_revoked_versions_are_called_out(tmp_path):
    store = recorded_store(tmp_path)
    record = os.path.join(store.root, "fleets", "web.json")
    shutil.move(record, tmp_path / "web.json")      # the lifecycle never deprecates what a fleet runs
    policy = lifecycle.Policy(retain_at_least=1, keep_newest=1, deprecate_after_days=None, delete_after_days=90)
    assert {v for a, v, _ in lifecycle.apply(store, policy, log=lambda m: None)} == {V1, V2}
    shutil.move(tmp_path / "web.json", record)
    revoke(store, V3, "CVE-2099-9999 in its kernel")
    (fleet,) = image_age(store, select_fleets(store), NOW + dt.timedelta(days=30))
    called = {h["host"]: h["callout"] for h in fleet["callouts"]}
    assert called["web-3"].startswith(f"deprecated: {V2} since ")
    assert called["web-1"].startswith(f"revoked: {V3} is revoked since") and "kernel" in called["web-2"]


def test_age_over_time_replays_the_rollouts_and_the_rollback(tmp_path):
    store = recorded_store(tmp_path)
    (fleet,) = select_fleets(store)
    rollouts = load_rollouts(store, "web")
    points = dict(timeline(fleet, rollouts))
    at = lambda text: dt.datetime.fromisoformat(text)       # noqa: E731
    assert points[at("2026-11-10T12:00:00+00:00")] == {"web-1": V1, "web-2": V1, "web-3": V1}
    assert points[at("2026-11-28T09:10:00+00:00")]["web-1"] == "golden-web-2026.11.28+1"
    assert points[at("2026-11-28T09:20:00+00:00")]["web-1"] == V2             # rolled back
    series = history(store, fleet, rollouts, NOW)
    assert series[0] == {"at": "2026-11-10T12:00:00+00:00", "median_seconds": age_at(at(series[0]["at"]), V1),
                         "max_seconds": age_at(at(series[0]["at"]), V1)}
    assert series[-1]["at"] == NOW.isoformat() and series[-1]["max_seconds"] == age_at(NOW, V2)
    assert all(p["at"] >= "2026-11-25" for p in history(store, fleet, rollouts, NOW, since=at("2026-11-25T00:00Z")))
