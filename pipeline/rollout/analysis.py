"""The analysis of a wave: each gate measured `count` times every `interval` against Prometheus, on the
wave's new hosts, against absolute thresholds and against the hosts still on the old version.

    result = analyse(prom.client, policy.gates, Hosts(["web-1"], [new]), Hosts(["web-2", "web-3"], [old]))
    result.passed, result.failed_gate, [m.to_dict() for g in result.gates for m in g.measurements]

A measurement fails on a query error, no data, a new host missing from the answer, NaN or ±Inf, a
threshold crossed, or (for a relative check) a baseline that is itself an error, empty or not finite:
nothing that could not be measured ever passes (the lessons of Argo Rollouts #1466 and #4479).
A gate fails as soon as its failed measurements exceed `failure_limit`; the analysis passes only if
every gate passed, and stops at the first gate that failed.
"""

import math
import time
from dataclasses import dataclass, field

from pipeline.rollout.metrics import render

PASSED, FAILED, RUNNING = "passed", "failed", "running"


@dataclass(frozen=True)
class Hosts:
    """A group of hosts to measure: their names and the versions they run."""
    names: tuple
    versions: tuple

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "versions", tuple(self.versions))


@dataclass
class Measurement:
    metric: str
    time: float
    values: dict                  # host -> value (None when the host had no data)
    baseline: float | None        # mean of the old hosts, for a relative check
    thresholds: dict              # max / min / relative limit that applied
    verdict: str
    reason: str
    query: str = ""

    def to_dict(self):
        finite = lambda v: v if v is None or math.isfinite(v) else str(v)  # JSON has no NaN
        return {"metric": self.metric, "time": self.time, "values": {h: finite(v) for h, v in self.values.items()},
                "baseline": finite(self.baseline) if self.baseline is not None else None,
                "thresholds": self.thresholds, "verdict": self.verdict, "reason": self.reason, "query": self.query}


@dataclass
class GateResult:
    gate: object
    measurements: list = field(default_factory=list)

    @property
    def failures(self):
        return sum(m.verdict == FAILED for m in self.measurements)

    @property
    def status(self):
        return decide(self.gate, self.measurements)

    def to_dict(self):
        return {"metric": self.gate.metric.name, "status": self.status, "failures": self.failures,
                "failure_limit": self.gate.failure_limit, "count": self.gate.count,
                "measurements": [m.to_dict() for m in self.measurements]}


@dataclass
class AnalysisResult:
    gates: list
    started: float
    finished: float | None = None

    @property
    def passed(self):
        return all(g.status == PASSED for g in self.gates)

    @property
    def failed_gate(self):
        return next((g for g in self.gates if g.status == FAILED), None)

    def summary(self):
        """One line naming the metric, its value and its threshold when the analysis failed."""
        g = self.failed_gate
        if g is None:
            return "passed: " + ", ".join(f"{r.gate.metric.name} {r.failures}/{r.gate.count} failed" for r in self.gates)
        last = next(m for m in reversed(g.measurements) if m.verdict == FAILED)
        return (f"{g.gate.metric.name} failed {g.failures} of {len(g.measurements)} measurements "
                f"(failure limit {g.gate.failure_limit}): {last.reason}")

    def to_dict(self):
        return {"passed": self.passed, "started": self.started, "finished": self.finished,
                "summary": self.summary(), "gates": [g.to_dict() for g in self.gates]}


def decide(gate, measurements):
    """failed once failures exceed the limit; passed after `count` measurements; running before."""
    failures = sum(m.verdict == FAILED for m in measurements)
    if failures > gate.failure_limit:
        return FAILED
    return PASSED if len(measurements) >= gate.count else RUNNING


def thresholds(gate, baseline):
    """The limits that apply to a new host's value: absolute ones, and the relative limit from the baseline."""
    out = {k: v for k, v in (("max", gate.max), ("min", gate.min)) if v is not None}
    if gate.relative is not None and baseline is not None:
        lower = gate.metric.better == "lower"
        limits = []
        if gate.relative.margin is not None:
            limits.append(baseline + gate.relative.margin if lower else baseline - gate.relative.margin)
        if gate.relative.factor is not None:
            limits.append(baseline * gate.relative.factor)
        # Both checks must hold: the tighter limit applies.
        out["relative_max" if lower else "relative_min"] = min(limits) if lower else max(limits)
    return out


def judge(gate, new, result, baseline_result=None, old=None):
    """The verdict on one measurement: `result` answers the gate's query for the `new` hosts,
    `baseline_result` for the `old` hosts (None when no host is left on the old version)."""
    def fail(reason, values=None, baseline=None, limits=None):
        return Measurement(gate.metric.name, result.time, values or {}, baseline, limits or thresholds(gate, None),
                           FAILED, reason, result.query)

    if result.error:
        return fail(f"query error: {result.error}")
    if result.no_data:
        return fail(f"no data for the new hosts {', '.join(new.names)}")
    values = result.by("host")
    missing = [h for h in new.names if h not in values]
    if missing:
        return fail(f"no data for host {', '.join(missing)}", values)
    baseline, note = None, ""
    if gate.relative is not None:
        if baseline_result is None or not old or not old.names:
            note = "; relative check not applicable: no host left on the old version"
        elif baseline_result.error:
            return fail(f"baseline query error (old hosts): {baseline_result.error}", values)
        elif not baseline_result.finite():
            what = "no data" if baseline_result.no_data else "a value that is not finite"
            return fail(f"baseline (old hosts {', '.join(old.names)}) has {what}", values)
        else:
            olds = list(baseline_result.by("host").values())
            baseline = sum(olds) / len(olds)
    limits = thresholds(gate, baseline)
    for host in new.names:
        v = values[host]
        if not math.isfinite(v):
            return fail(f"{host}: value is {v} (not a number or infinite)", values, baseline, limits)
        for key, limit in limits.items():
            above = key.endswith("max")
            if (v > limit) if above else (v < limit):
                word = {"max": "max", "min": "min", "relative_max": "old hosts' limit", "relative_min": "old hosts' limit"}[key]
                extra = f" (old hosts {baseline:.4g})" if key.startswith("relative") else ""
                return fail(f"{host}: {gate.metric.name} {v:.4g} {'>' if above else '<'} {word} {limit:.4g}{extra}",
                            values, baseline, limits)
    return Measurement(gate.metric.name, result.time, values, baseline, limits, PASSED,
                       f"{len(new.names)} host(s) within thresholds{note}", result.query)


def query(client, gate, hosts, at=None):
    """Prometheus's answer to `gate`'s query for these hosts."""
    return client.query(render(gate.metric.query, hosts.names, hosts.versions, gate.window), at)


def measure(client, gate, new, old=None, at=None):
    """Query Prometheus once for `gate` and judge the answer."""
    result = query(client, gate, new, at)
    baseline = None
    if gate.relative is not None and old is not None and old.names:
        baseline = query(client, gate, old, result.time)
    return judge(gate, new, result, baseline, old)


def settle(client, gates, new, timeout, poll=2.0, on_wait=None):
    """Wait (at most `timeout` seconds) until every gate's query answers for every new host: a host that
    joined seconds ago has too few scrapes inside a rate() window to give a value, and measuring it then
    fails the version for what is only the observer's delay. Waiting decides nothing: the hosts and gates
    still without an answer are returned, and the analysis that follows fails on them.
    `on_wait(missing, waited)` is called after each round that left something unanswered."""
    started = time.monotonic()
    while True:
        missing = {}
        for g in gates:
            result = query(client, g, new)
            values = {} if result.error else result.by("host")
            short = [h for h in new.names if h not in values or not math.isfinite(values[h])]
            if short:
                missing[g.metric.name] = short
        waited = time.monotonic() - started
        if not missing or waited >= timeout:
            return missing
        if on_wait:
            on_wait(missing, waited)
        time.sleep(min(poll, max(0.0, timeout - waited)))


def analyse(client, gates, new, old=None, on_measurement=None):
    """Run every gate to its decision (first measurements at once, then every gate's interval);
    `on_measurement(gate_result, measurement)` is called after each, e.g. to persist and print."""
    started = time.time()
    results = [GateResult(g) for g in gates]
    due = {id(r): started for r in results}
    while True:
        pending = [r for r in results if r.status == RUNNING]
        if not pending or any(r.status == FAILED for r in results):
            return AnalysisResult(results, started, time.time())
        nxt = min(pending, key=lambda r: due[id(r)])
        wait = due[id(nxt)] - time.time()
        if wait > 0:
            time.sleep(wait)
        m = measure(client, nxt.gate, new, old)
        nxt.measurements.append(m)
        due[id(nxt)] += nxt.gate.interval
        if on_measurement:
            on_measurement(nxt, m)
