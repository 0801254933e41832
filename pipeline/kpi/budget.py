"""The failure budget: per fleet and period, rollouts started, completed and rolled back, against the policy.

    rollouts = load_rollouts(store, "web")                    # <store>/rollouts/web/*/rollout.json, oldest first
    failure_budget(rollouts, policy.rollback_budget, now)     # periods back from now; "exceeded" judges the last

A period is the policy's `rollback_budget.period`, counted back from now, so the last period is the one
that ends now; the rollback ratio is rolled-back rollouts over all rollouts started in the period.
`golden kpi` exits BUDGET_EXCEEDED when the current period of any fleet is above its `max_ratio`.
"""

import datetime as dt
import glob
import os

from pipeline.errors import GoldenError
from pipeline.rollout.policy import Policy, policy_path
from pipeline.store.revocation import parse_time
from pipeline.util import read_json

BUDGET_EXCEEDED = 12
RESULTS = ("completed", "rolled_back", "running", "failed")


def load_rollouts(store, fleet):
    """The fleet's rollout records, oldest first; a record without a start or with an unknown result is an error."""
    out = []
    for p in glob.glob(os.path.join(store.root, "rollouts", fleet, "*", "rollout.json")):
        r = read_json(p, "rollout record")
        if not isinstance(r, dict) or not isinstance(r.get("started_at"), str):
            raise GoldenError("a rollout record needs started_at", file=p, field="started_at")
        if r.get("result") not in RESULTS:
            raise GoldenError(f"result must be one of {', '.join(RESULTS)}, not {r.get('result')!r}", file=p,
                              field="result")
        r["_started"] = parse_time(r["started_at"], field=f"{p}: started_at")
        out.append(r)
    return sorted(out, key=lambda r: r["_started"])


def fleet_policy(fleet, rollouts):
    """The policy that governs the fleet: the one its newest rollout used, else its role's; None if neither."""
    recorded = next((r["policy"] for r in reversed(rollouts) if r.get("policy")), None)
    if recorded and os.path.isfile(recorded):
        return Policy.load(recorded)
    try:
        return Policy.load(policy_path(fleet.get("role") or fleet["fleet"]))
    except GoldenError:
        return None


def failure_budget(rollouts, budget, now, since=None):
    """Periods of `budget.period` seconds ending at `now`, back to `since` (default: the first rollout's
    period): counts per result, the rollback ratio, and whether it is above `budget.max_ratio`."""
    period = dt.timedelta(seconds=budget.period)
    first = since or (rollouts[0]["_started"] if rollouts else now)
    count = max(1, -(-(now - first) // period))          # periods that reach back to the first
    periods = []
    for k in range(count - 1, -1, -1):
        end = now - k * period
        start = end - period
        inside = [r for r in rollouts if start < r["_started"] <= end]
        row = {"start": start.isoformat(timespec="seconds"), "end": end.isoformat(timespec="seconds"),
               "started": len(inside), **{res: sum(r["result"] == res for r in inside) for res in RESULTS}}
        row["ratio"] = round(row["rolled_back"] / row["started"], 4) if row["started"] else None
        row["exceeded"] = row["ratio"] is not None and row["ratio"] > budget.max_ratio
        row["rolled_back_ids"] = [r["id"] for r in inside if r["result"] == "rolled_back"]
        periods.append(row)
    return {"max_ratio": budget.max_ratio, "period_seconds": budget.period, "periods": periods,
            "current": periods[-1], "exceeded": periods[-1]["exceeded"]}
