"""The rollout benchmark's arithmetic on a recorded rollout: hosts of one batch boot at once, so the wall time
they take is the slowest one's, and batches one after the other add up (summing every host made the
controller's overhead negative on a 4-host emergency rollout: 1638.7 s of host time in 1326 s of wall time)."""

import importlib.util
import os

from pipeline.paths import ROOT

spec = importlib.util.spec_from_file_location("bench_rollout", os.path.join(ROOT, "benchmarks", "rollout.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def _record(rollback=(), policy="/nonexistent/policy.yaml"):
    wave = lambda name, batches, secs, start, end: {  # noqa: E731
        "name": name, "hosts": [h for b in batches for h in b], "bake": 10, "started_at": start, "finished_at": end,
        "replacements": [{"host": h, "seconds": s} for h, s in secs.items()], "settle": {"seconds": 5},
        "measurements": [{"at": end}]}
    return {"policy": policy, "started_at": "2026-12-03T10:00:00+00:00", "finished_at": "2026-12-03T10:20:00+00:00",
            "result": "completed" if not rollback else "rolled_back",
            "plan": {"waves": [{"name": "canary", "batches": [["web-1"]]},
                               {"name": "all", "batches": [["web-2", "web-3"], ["web-4"]]}]},
            "waves": [wave("canary", [["web-1"]], {"web-1": 300.0}, "2026-12-03T10:00:00+00:00", "2026-12-03T10:05:15+00:00"),
                      wave("all", [["web-2", "web-3"], ["web-4"]], {"web-2": 400.0, "web-3": 420.0, "web-4": 350.0},
                           "2026-12-03T10:05:15+00:00", "2026-12-03T10:19:50+00:00")],
            "rollback": {"replacements": [{"host": h, "seconds": s} for h, s in rollback]}}


def test_a_batch_counts_once_by_its_slowest_host_and_batches_add_up():
    host_time, spent = bench.replacement_time(_record())
    assert host_time == 1470.0
    assert spent == 300.0 + 420.0 + 350.0


def test_a_rollback_is_batched_by_the_plans_largest_batch_when_the_policy_is_gone():
    _, spent = bench.replacement_time(_record(rollback=[("web-1", 200.0), ("web-2", 210.0), ("web-3", 190.0)]))
    assert spent == 300.0 + 420.0 + 350.0 + 210.0 + 190.0


def test_the_overhead_is_what_the_wall_time_leaves_after_hosts_waits_bakes_and_analyses():
    f = bench.figures(_record(), 1200.0)
    assert f["replacements_s"] == 1070.0 and f["settles_s"] == 10.0 and f["bakes_s"] == 20 and f["analyses_s"] == 0.0
    assert f["overhead_s"] == 1200.0 - 1070.0 - 10.0 - 20 and f["wall_over_replacements"] == round(1200 / 1070, 2)
