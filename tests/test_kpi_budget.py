"""The failure budget of the recorded fleet: rollouts per period and result, the rollback ratio against the
policy's rollback_budget, and the command's non-zero exit (12) when the current period exceeds it."""

import datetime as dt
import json
import os

from pipeline.cli import main
from pipeline.kpi.budget import BUDGET_EXCEEDED, failure_budget, fleet_policy, load_rollouts
from pipeline.kpi.figures import select_fleets

from .test_kpi_figures import AS_OF, NOW, POLICY, add_rollout, recorded, recorded_store


def test_the_current_period_counts_each_result_against_the_budget(tmp_path):
    store = recorded_store(tmp_path)
    rollouts = load_rollouts(store, "web")
    policy = fleet_policy(select_fleets(store)[0], rollouts)
    assert policy.path == POLICY and policy.rollback_budget.max_ratio == 0.4
    report = failure_budget(rollouts, policy.rollback_budget, NOW)
    (period,) = report["periods"]
    assert (period["started"], period["completed"], period["rolled_back"], period["running"]) == (3, 1, 1, 1)
    assert period["ratio"] == 0.3333 and not report["exceeded"]
    assert period["rolled_back_ids"] == ["20261128T090000Z-c3d4"]


def test_periods_back_to_since_and_an_old_rollback_leaves_the_current_period(tmp_path):
    store = recorded_store(tmp_path)
    old = json.loads(recorded("rollouts/web/20261128T090000Z-c3d4/rollout.json").replace("@POLICY@", POLICY))
    old.update(id="20261015T090000Z-0old", started_at="2026-10-15T09:00:00+00:00")
    add_rollout(store, old)
    budget = fleet_policy(select_fleets(store)[0], load_rollouts(store, "web")).rollback_budget
    report = failure_budget(load_rollouts(store, "web"), budget, NOW,
                            since=dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc))
    assert [p["started"] for p in report["periods"]] == [0, 1, 3]
    assert [p["exceeded"] for p in report["periods"]] == [False, True, False] and not report["exceeded"]


def test_without_its_own_policy_a_fleet_is_judged_by_its_roles_and_exceeds_it(tmp_path, capsys):
    store = recorded_store(tmp_path)
    for path in store_rollouts(store):
        record = json.load(open(path))
        record["policy"] = None
        json.dump(record, open(path, "w"))
    assert main(["kpi", "--store", store.root, *AS_OF, "--json"]) == BUDGET_EXCEEDED
    (budget,) = json.loads(capsys.readouterr().out)["failure_budget"]
    assert budget["policy"].endswith("policies/web.yaml") and budget["max_ratio"] == 0.2 and budget["exceeded"]


def store_rollouts(store):
    root = os.path.join(store.root, "rollouts", "web")
    return [os.path.join(root, d, "rollout.json") for d in sorted(os.listdir(root))]
