"""All the KPIs of `golden kpi`, read from the store only: MTTR, drift, image age, failure budget, history.

    fleets = select_fleets(store, "web")                   # fleet records as dicts; GoldenError if unknown
    report = figures(store, fleets, observe(fleets), now)  # observe() asks every host over SSH
    exit_code(report)                                      # 0, or BUDGET_EXCEEDED
"""

import os

from pipeline.errors import GoldenError
from pipeline.fleet.record import Fleets
from pipeline.kpi import age, budget, drift, emergencies
from pipeline.supply.sbom import SBOM_FILE
from pipeline.util import read_json


def select_fleets(store, name=None):
    """The fleet named (an unknown name is an error naming the fleets there are), or every fleet."""
    records = Fleets(store.root)
    return [records.load(n).to_dict() for n in ([name] if name else records.names())]


def observe(fleets):
    """{(fleet, host): packages, or why they could not be asked} for every host with an ssh entry."""
    out = {}
    for fleet in fleets:
        for h in fleet["hosts"]:
            key = (fleet["fleet"], h["name"])
            if not h.get("ssh"):
                out[key] = "the fleet record gives no ssh entry for it"
                continue
            try:
                out[key] = drift.collect_packages(h["ssh"])
            except GoldenError as exc:
                out[key] = str(exc)
    return out


def sbom_packages(store, versions):
    """{version: packages of its SBOM in the store, or None}."""
    out = {}
    for v in versions:
        p = os.path.join(store.root, "images", v, SBOM_FILE)
        out[v] = drift.image_packages(read_json(p, "SBOM")) if os.path.exists(p) else None
    return out


def figures(store, fleets, observed, now, since=None, only=None):
    """Every KPI for `fleets` at `now` (events before `since` left out), as one JSON-ready dict. MTTR counts
    every emergency in the store, those of fleets destroyed since included (the ledger is history, not state),
    unless `only` names the one fleet asked about."""
    images = sbom_packages(store, sorted({h["version"] for f in fleets for h in f["hosts"] if h.get("version")}))
    ages = age.image_age(store, fleets, now)
    budgets, histories = [], []
    for fleet in fleets:
        rollouts = budget.load_rollouts(store, fleet["fleet"])
        histories.append({"fleet": fleet["fleet"], "points": age.history(store, fleet, rollouts, now, since)})
        policy = budget.fleet_policy(fleet, rollouts)
        row = {"fleet": fleet["fleet"], "policy": policy and policy.path}
        if policy is None:
            row.update(exceeded=False, reason=f"no rollout policy for role {fleet.get('role')!r}")
        else:
            row.update(budget.failure_budget(rollouts, policy.rollback_budget, now, since))
        budgets.append(row)
    names = {f["fleet"] for f in fleets}
    mttr = emergencies.summary(emergencies.load_all(store), now, since, fleets=only and {only})
    return {"as_of": now.isoformat(timespec="seconds"), "since": since and since.isoformat(timespec="seconds"),
            "fleets": sorted(names), "mttr": mttr, "drift": drift.drift(fleets, observed, images),
            "image_age": ages, "age_history": histories, "failure_budget": budgets,
            "budget_exceeded": [b["fleet"] for b in budgets if b["exceeded"]]}


def exit_code(report):
    return budget.BUDGET_EXCEEDED if report["budget_exceeded"] else 0
