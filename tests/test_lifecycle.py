"""Lifecycle on a real store: deprecate, then delete; never what a channel points at or a fleet runs; --dry-run."""

import datetime as dt
import json
import os

import pytest

from pipeline.cli import main
from pipeline.errors import GoldenError
from pipeline.store import channels, hooks, lifecycle
from pipeline.store.store import Store

from .test_channels import publish

POLICY = "retain_at_least: 1\nkeep_newest: 2\ndelete_after_days: 10\n"


def _policy(tmp_path, text=POLICY):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def five(tmp_path):
    store = Store(tmp_path / "store")
    versions = [publish(store, tmp_path, n) for n in range(1, 6)]
    channels.promote(store, versions[0], "stable", "the oldest is still stable")
    (tmp_path / "store" / "fleets").mkdir()
    (tmp_path / "store" / "fleets" / "web.json").write_text(json.dumps({"fleet": "web", "versions": [versions[1]]}))
    return store, versions


def test_lifecycle_deprecates_then_deletes_but_never_what_a_channel_or_fleet_holds(five, tmp_path):
    store, (v1, v2, v3, v4, v5) = five
    policy = lifecycle.load_policy(_policy(tmp_path))
    heard = []
    hook = hooks.register(lambda s, v, action, record: heard.append((action, v)))
    try:
        assert lifecycle.apply(store, policy, log=lambda m: None) == [("deprecate", v3, "not among the newest 2")]
        assert lifecycle.apply(store, policy, log=lambda m: None) == []          # deletion waits its days
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=11)
        assert lifecycle.apply(store, policy, now=later, log=lambda m: None)[0][:2] == ("delete", v3)
    finally:
        hooks.unregister(hook)
    assert heard == [("deprecate", v3), ("delete", v3)]
    assert store.versions() == [v1, v2, v4, v5] and v3 in store.index()["deleted"]
    assert not os.path.exists(os.path.join(store.root, "images", v3))
    for v in (v1, v2, v4, v5):
        assert main(["verify", v, "--store", store.root]) == 0
    assert [e["action"] for e in store.events()][-2:] == ["deprecate", "delete"]


def test_by_age_everything_old_goes_except_the_retained_and_the_held(five, tmp_path):
    store, (v1, v2, v3, v4, v5) = five
    policy = lifecycle.load_policy(_policy(tmp_path, "retain_at_least: 1\ndeprecate_after_days: 30\n"
                                                     "delete_after_days: 0\n"))
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31)
    done = lifecycle.apply(store, policy, now=later, log=lambda m: None)
    assert [(a, v) for a, v, _ in done] == [("deprecate", v4), ("deprecate", v3)]      # v5 retained, v1/v2 held
    assert [(a, v) for a, v, _ in lifecycle.apply(store, policy, now=later, log=lambda m: None)] == [
        ("delete", v4), ("delete", v3)]
    assert store.versions() == [v1, v2, v5]
    with pytest.raises(GoldenError, match="deprecated|not published"):
        channels.promote(store, v4, "stable", "")


def test_dry_run_lists_and_changes_nothing(five, tmp_path, capsys):
    store, versions = five
    before = open(store.index_path).read(), open(store.events_path).read()
    assert main(["lifecycle", "--policy", _policy(tmp_path), "--dry-run", "--store", store.root]) == 0
    assert f"would deprecate {versions[2]}" in capsys.readouterr().out
    assert (open(store.index_path).read(), open(store.events_path).read()) == before


def test_a_bad_policy_or_fleet_file_is_a_located_error_and_changes_nothing(five, tmp_path, capsys):
    store, versions = five
    before = open(store.index_path).read()
    bad = _policy(tmp_path, "retain_at_least: 1\nkeep_newest: 0\ndelete_after_days: 1\n")
    assert main(["lifecycle", "--policy", bad, "--store", store.root]) == 2
    assert f"{bad}:2: keep_newest: must be 1 or more" in capsys.readouterr().err
    (tmp_path / "store" / "fleets" / "db.json").write_text('{"fleet": "db", "versions": "all"}')
    assert main(["lifecycle", "--policy", _policy(tmp_path), "--store", store.root]) == 2
    assert "db.json: versions: must be a list of versions" in capsys.readouterr().err
    assert open(store.index_path).read() == before


def test_a_deletion_a_crash_cut_short_is_finished_and_the_version_never_reused(five, tmp_path):
    store, versions = five
    policy = lifecycle.load_policy(_policy(tmp_path, "retain_at_least: 1\nkeep_newest: 2\ndelete_after_days: 0\n"))
    lifecycle.apply(store, policy, log=lambda m: None)
    index = store.index()
    entry = index["images"].pop(versions[2])       # the commit of a delete whose directory removal never ran
    index["deleted"][versions[2]] = entry
    json.dump(index, open(store.index_path, "w"))
    assert store.unlisted() == [versions[2]]
    lifecycle.apply(store, policy, log=lambda m: None)
    assert store.unlisted() == []
    with pytest.raises(GoldenError, match="already published"):
        publish(store, tmp_path / "again", 3)
