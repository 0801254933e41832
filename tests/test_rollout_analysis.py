"""Gate decisions offline: the judge on recorded query answers, and the recording rules under promtool."""

import math
import os
import shutil
import subprocess

import pytest

from pipeline.rollout.analysis import (
    FAILED,
    PASSED,
    RUNNING,
    Hosts,
    Measurement,
    decide,
    judge,
)
from pipeline.rollout.metrics import CATALOGUE, rules_yaml
from pipeline.rollout.policy import Gate, Relative
from pipeline.rollout.prometheus import QueryResult, Sample

DATA = os.path.join(os.path.dirname(__file__), "data", "rollout")


def gate(name="error_rate", **kw):
    return Gate(CATALOGUE[name], **{"failure_limit": 1, **kw})


def answer(**values):
    return QueryResult("q", 1000.0, tuple(Sample({"host": h}, v) for h, v in values.items()))


NEW, OLD = Hosts(["web-1"], ["v2"]), Hosts(["web-2", "web-3"], ["v1"])


@pytest.mark.parametrize("result, reason", [
    (QueryResult("q", 1.0, error="Prometheus unreachable at http://127.0.0.1:1: refused"), "query error"),
    (QueryResult("q", 1.0), "no data for the new hosts web-1"),
    (answer(**{"web-1": math.nan}), "web-1: value is nan"),
    (answer(**{"web-1": math.inf}), "web-1: value is inf"),
    (answer(**{"web-9": 0.0}), "no data for host web-1"),
    (answer(**{"web-1": 0.03}), "web-1: error_rate 0.03 > max 0.02"),
])
def test_what_cannot_be_measured_or_crosses_fails(result, reason):
    m = judge(gate(max=0.02), NEW, result)
    assert m.verdict == FAILED and m.reason.startswith(reason), m.reason


def test_within_threshold_passes():
    assert judge(gate(max=0.02), NEW, answer(**{"web-1": 0.02})).verdict == PASSED


def test_min_threshold_for_higher_is_better():
    g = gate("memory_available", min=0.1)
    assert judge(g, NEW, answer(**{"web-1": 0.05})).reason == "web-1: memory_available 0.05 < min 0.1"
    assert judge(g, NEW, answer(**{"web-1": 0.5})).verdict == PASSED


def test_relative_margin_and_factor_use_the_tighter_limit():
    g = gate(relative=Relative(margin=0.01, factor=2.0))
    old = answer(**{"web-2": 0.004, "web-3": 0.006})       # baseline 0.005: limits 0.015 and 0.01
    worse = judge(g, NEW, answer(**{"web-1": 0.012}), old, OLD)
    assert worse.verdict == FAILED and worse.thresholds == {"relative_max": pytest.approx(0.01)}
    assert "(old hosts 0.005)" in worse.reason
    assert judge(g, NEW, answer(**{"web-1": 0.009}), old, OLD).verdict == PASSED


def test_relative_for_higher_is_better():
    g = gate("memory_available", relative=Relative(margin=0.1))
    old = answer(**{"web-2": 0.6, "web-3": 0.6})
    assert judge(g, NEW, answer(**{"web-1": 0.45}), old, OLD).verdict == FAILED
    assert judge(g, NEW, answer(**{"web-1": 0.55}), old, OLD).verdict == PASSED


@pytest.mark.parametrize("baseline, reason", [
    (QueryResult("q", 1.0, error="timeout"), "baseline query error (old hosts): timeout"),
    (QueryResult("q", 1.0), "baseline (old hosts web-2, web-3) has no data"),
    (answer(**{"web-2": math.nan}), "baseline (old hosts web-2, web-3) has a value that is not finite"),
])
def test_a_baseline_that_cannot_be_measured_fails(baseline, reason):
    m = judge(gate(relative=Relative(margin=0.01)), NEW, answer(**{"web-1": 0.0}), baseline, OLD)
    assert m.verdict == FAILED and m.reason == reason


def test_relative_without_old_hosts_says_so_and_keeps_the_absolute_check():
    g = gate(max=0.02, relative=Relative(margin=0.01))
    ok = judge(g, NEW, answer(**{"web-1": 0.0}), None, Hosts([], []))
    assert ok.verdict == PASSED and "relative check not applicable" in ok.reason
    assert judge(g, NEW, answer(**{"web-1": 0.5}), None, Hosts([], [])).verdict == FAILED


def measurements(*verdicts):
    return [Measurement("error_rate", i, {}, None, {}, v, "") for i, v in enumerate(verdicts)]


@pytest.mark.parametrize("verdicts, status", [
    ((), RUNNING),
    ((PASSED, FAILED), RUNNING),                 # one failure is within failure_limit 1
    ((PASSED, FAILED, PASSED), PASSED),
    ((FAILED, FAILED), FAILED),                  # two exceed the limit: decided before the count
    ((FAILED, PASSED, FAILED), FAILED),
])
def test_decision_over_measurements(verdicts, status):
    assert decide(gate(), measurements(*verdicts)) == status


def test_measurement_record_has_no_nan_for_json():
    m = judge(gate(max=0.02), NEW, answer(**{"web-1": math.nan}))
    assert m.to_dict()["values"] == {"web-1": "nan"} and m.to_dict()["verdict"] == FAILED


@pytest.mark.skipif(not shutil.which("promtool"), reason="needs Debian's prometheus package")
def test_recording_rules_on_recorded_series(tmp_path):
    shutil.copy(os.path.join(DATA, "rules_test.yaml"), tmp_path)
    (tmp_path / "rules.yml").write_text(rules_yaml(CATALOGUE.values()))
    run = subprocess.run(["promtool", "test", "rules", "rules_test.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    # The same series must catch a rule that forgets the failed requests.
    (tmp_path / "rules.yml").write_text(rules_yaml(CATALOGUE.values()).replace('5..|error', '5..'))
    run = subprocess.run(["promtool", "test", "rules", "rules_test.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode != 0 and 'host="down"} 0E+00' in run.stdout + run.stderr


def test_the_rollout_record_gives_each_measurement_its_worst_host():
    """rollout.json's `value` of a measurement: the highest host for a lower-is-better metric, the lowest
    for a higher-is-better one (a host that could not be measured has no value)."""
    from pipeline.rollout.controller import _measurement

    def step(metric, thresholds):
        return {"at": "2026-12-02T03:00:00+00:00", "detail": {
            "metric": metric, "time": 0.0, "values": {"web-1": 0.3, "web-2": 0.6, "web-3": None},
            "thresholds": thresholds, "baseline": None, "verdict": "passed", "reason": ""}}
    assert _measurement(step("error_rate", {"max": 0.02}))["value"] == 0.6
    assert _measurement(step("memory_available", {"min": 0.1}))["value"] == 0.3
    assert _measurement(step("memory_available", {"relative_min": 0.2}))["value"] == 0.3
    # the report charts each measurement against its limits: the record keeps them (a live rollout's report
    # once failed on a record that had lost them)
    from pipeline.rollout.report import render
    m = _measurement(step("error_rate", {"max": 0.02}))
    assert m["thresholds"] == {"max": 0.02} and m["baseline"] is None and m["passed"], m
    page = render({"id": "r1", "fleet": "web", "kind": "rollout", "to": "v2", "from": ["v1"], "result": "completed",
                   "started_at": "2026-12-02T03:00:00+00:00", "finished_at": "2026-12-02T03:05:00+00:00",
                   "reason": None, "failure": None, "emergency": False,
                   "waves": [{"name": "canary", "result": "passed", "hosts": ["web-1"], "replacements": [],
                              "started_at": "2026-12-02T03:00:00+00:00", "finished_at": "2026-12-02T03:01:00+00:00",
                              "bake": 20, "measurements": [m]}]}, "../kpi.html")
    assert "<svg" in page and "error_rate" in page
