import pytest

from pipeline.errors import GoldenError
from pipeline.rollout.policy import Policy, policy_path
from pipeline.rollout.waves import plan

GOOD = """\
waves:
  - {name: canary, hosts: 1, bake: 30s}
  - {name: pilot, percent: 5, bake: 1m}
  - {name: quarter, percent: 25, bake: 1m}
  - {name: half, percent: 50, bake: 1m}
  - {name: all, percent: 100, bake: 1m}
max_parallel: 2
emergency: {bake: 5s}
analysis: {interval: 10s, count: 3, failure_limit: 1}
metrics:
  - name: error_rate
    max: 0.02
    relative: {margin: 0.01}
rollback_budget: {max_ratio: 0.2, period: 30d}
"""


def load(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return Policy.load(str(path))


def error(tmp_path, text):
    with pytest.raises(GoldenError) as exc:
        load(tmp_path, text)
    assert exc.value.file.endswith("policy.yaml")
    return exc.value


def hosts(n):
    return [f"web-{i}" for i in range(1, n + 1)]


def test_default_web_policy_loads():
    p = Policy.load(policy_path("web"))
    assert [w.name for w in p.waves] == ["canary", "pilot", "quarter", "half", "all"]
    assert p.waves[0].hosts == 1 and [w.percent for w in p.waves[1:]] == [5, 25, 50, 100]
    assert {g.metric.name for g in p.gates} == {"error_rate", "latency_p90", "cpu", "memory_available",
                                                "kernel_log_errors"}
    assert p.emergency_bake < min(w.bake for w in p.waves)


def test_unknown_role_has_no_policy():
    with pytest.raises(GoldenError, match="no rollout policy for role 'nosuch'"):
        policy_path("nosuch")


@pytest.mark.parametrize("n, waves, skipped", [
    (1, [("canary", 1)], ["pilot", "quarter", "half", "all"]),
    (2, [("canary", 1), ("all", 2)], ["pilot", "quarter", "half"]),
    (4, [("canary", 1), ("half", 2), ("all", 4)], ["pilot", "quarter"]),
    (20, [("canary", 1), ("quarter", 5), ("half", 10), ("all", 20)], ["pilot"]),
    (1000, [("canary", 1), ("pilot", 50), ("quarter", 250), ("half", 500), ("all", 1000)], []),
])
def test_wave_arithmetic(tmp_path, n, waves, skipped):
    p = plan(load(tmp_path, GOOD), hosts(n))
    assert [(w.name, w.target) for w in p.waves] == waves
    assert [s.name for s in p.skipped] == skipped
    assert all("adds no host" in s.reason for s in p.skipped)
    # Every host exactly once, in fleet order, and every wave adds at least one.
    assert [h for w in p.waves for h in w.hosts] == hosts(n)
    assert all(len(w.hosts) >= 1 and all(len(b) <= 2 for b in w.batches) for w in p.waves)


def test_plan_says_why_a_wave_is_skipped(tmp_path):
    lines = plan(load(tmp_path, GOOD), hosts(4)).lines()
    assert lines[1] == "wave pilot: skipped (ceil(5 % × 4) = 1 adds no host: 1 already replaced)"
    assert lines[3].startswith("wave half: 1 host(s) → 2/4, bake 60s: web-2")


def test_canary_of_two_on_a_fleet_of_one(tmp_path):
    p = plan(load(tmp_path, GOOD.replace("hosts: 1", "hosts: 2")), hosts(1))
    assert [(w.name, w.hosts) for w in p.waves] == [("canary", ("web-1",))]


def test_emergency_uses_the_short_bake(tmp_path):
    p = plan(load(tmp_path, GOOD), hosts(20), emergency=True)
    assert {w.bake for w in p.waves} == {5}
    assert {w.bake for w in plan(load(tmp_path, GOOD), hosts(20)).waves} == {30, 60}


def test_batches_follow_max_parallel(tmp_path):
    p = plan(load(tmp_path, GOOD), hosts(20))
    assert [len(b) for b in p.waves[-1].batches] == [2, 2, 2, 2, 2]


def test_durations_and_gate_defaults(tmp_path):
    p = load(tmp_path, GOOD)
    g = p.gates[0]
    assert (g.interval, g.count, g.failure_limit, g.max, g.relative.margin) == (10, 3, 1, 0.02, 0.01)
    assert p.rollback_budget.period == 30 * 86400 and p.waves[0].bake == 30


@pytest.mark.parametrize("old, new, line, field, reason", [
    ("hosts: 1", "hosts: 0", 2, "waves[0].hosts", "a canary is 1 or 2 hosts"),
    ("percent: 5,", "percent: 0,", 3, "waves[1].percent", "must be above 0"),
    ("percent: 50,", "percent: 20,", 5, "waves[3].percent", "percentages must rise strictly: 20 after 25"),
    ("percent: 100,", "percent: 90,", 6, "waves[4].percent", "the last wave must reach 100 percent"),
    ("name: error_rate", "name: eror_rate", 11, "metrics[0].name", "unknown metric 'eror_rate'"),
    ("bake: 1m}\n  - {name: quarter", "bake: -1m}\n  - {name: quarter", 3, "waves[1].bake", "must not be negative"),
    ("max: 0.02", "max: '2%'", 12, "metrics[0].max", "must be an integer or a number, not str"),
    ("max: 0.02", "max: true", 12, "metrics[0].max", "not bool"),
    ("failure_limit: 1}", "failure_limit: 3}", 9, "analysis.failure_limit", "could never fail"),
    ("max: 0.02\n", "max: 0.02\n    count: 1\n", 11, "metrics[0].failure_limit", "1 failures allowed of 1"),
    ("{margin: 0.01}", "{margn: 0.01}", 13, "metrics[0].relative.margn", "unknown field"),
    ("{name: all, percent: 100, bake: 1m}", "{name: all, hosts: 2, bake: 1m}", 6, "waves[4].hosts",
     "only the first wave"),
    ("bake: 5s", "bake: soon", 8, "emergency.bake", "must be a duration"),
])
def test_bad_policy_names_file_line_field(tmp_path, old, new, line, field, reason):
    assert old in GOOD
    err = error(tmp_path, GOOD.replace(old, new, 1))
    assert (err.line, err.field) == (line, field) and reason in err.reason, str(err)
