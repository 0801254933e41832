"""Rollout policies (`policies/<role>.yaml`): the waves, their bake times, and the gates each wave must pass.

    policy = Policy.load(policy_path("web"))
    policy.waves[0].hosts, policy.waves[1].percent, policy.gates[0].metric.name, policy.max_parallel

A policy reads like an Argo Rollouts AnalysisTemplate: each gate names a metric of
pipeline.rollout.metrics.CATALOGUE (or gives its own `query`), absolute thresholds (`max`, `min`),
an optional relative check against the hosts still on the old version (`relative: {margin}` or
`{factor}`), and `interval`, `count`, `failure_limit` (defaults from `analysis:`).
"""

import os
import re
from dataclasses import dataclass

from pipeline import yamlsrc
from pipeline.errors import GoldenError
from pipeline.paths import POLICIES_DIR
from pipeline.rollout.metrics import CATALOGUE, Metric

DURATION_RE = re.compile(r"^(-?\d+)(s|m|h|d)?$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_PROMQL_DURATION_RE = re.compile(r"^\d+(ms|s|m|h|d)$")


@dataclass(frozen=True)
class Wave:
    name: str
    hosts: int | None      # the canary: a host count
    percent: float | None  # later waves: cumulative share of the fleet
    bake: int              # seconds to wait after the wave's hosts are healthy, before analysis


@dataclass(frozen=True)
class Relative:
    margin: float | None = None   # new ≤ old + margin (≥ old − margin when higher is better)
    factor: float | None = None   # new ≤ old × factor (≥ old × factor when higher is better)


@dataclass(frozen=True)
class Gate:
    metric: Metric
    max: float | None = None
    min: float | None = None
    relative: Relative | None = None
    interval: int = 10         # seconds between measurements
    count: int = 3             # measurements per analysis
    failure_limit: int = 0     # the analysis fails when failed measurements exceed this
    window: str = "1m"         # PromQL range of rate()/increase()
    line: int | None = None


@dataclass(frozen=True)
class RollbackBudget:
    max_ratio: float       # rolled-back rollouts / all rollouts, at most, per period
    period: int            # seconds


@dataclass(frozen=True)
class Policy:
    path: str
    description: str
    waves: tuple
    max_parallel: int          # hosts replaced at once within a wave
    emergency_bake: int        # the bake of every wave in an emergency rollout
    gates: tuple
    rollback_budget: RollbackBudget

    @classmethod
    def load(cls, path):
        doc = yamlsrc.load(path)
        top = yamlsrc.Fields(doc, doc.data)
        description = top.get("description", str, default="")
        waves = _waves(doc, top)
        max_parallel = top.get("max_parallel", int, default=1, check=_positive)
        emergency = top.sub("emergency", required=True)
        emergency_bake = _duration(emergency, "bake", required=True)
        emergency.done()
        defaults = top.sub("analysis", required=True)
        base = {"interval": _duration(defaults, "interval", required=True, positive=True),
                "count": defaults.get("count", int, required=True, check=_positive),
                "failure_limit": defaults.get("failure_limit", int, default=0, check=_not_negative),
                "window": defaults.get("window", str, default="1m", check=_promql_duration)}
        if base["failure_limit"] >= base["count"]:
            raise defaults.error("failure_limit", _never_fails(base["failure_limit"], base["count"]))
        defaults.done()
        gates = _gates(doc, top, base)
        budget_f = top.sub("rollback_budget", required=True)
        budget = RollbackBudget(
            max_ratio=float(budget_f.get("max_ratio", (int, float), required=True,
                                         check=lambda v: None if 0 <= v <= 1 else "must be between 0 and 1")),
            period=_duration(budget_f, "period", required=True, positive=True))
        budget_f.done()
        top.done()
        return cls(os.path.abspath(path), description, waves, max_parallel, emergency_bake, gates, budget)


def policy_path(role):
    """The default policy of a role: policies/<role>.yaml."""
    path = os.path.join(POLICIES_DIR, f"{role}.yaml")
    if not os.path.isfile(path):
        raise GoldenError(f"no rollout policy for role {role!r} (give --policy FILE)", file=path)
    return path


def _positive(v):
    return None if v > 0 else "must be at least 1"


def _not_negative(v):
    return None if v >= 0 else "must not be negative"


def _never_fails(limit, count):
    return f"{limit} failures allowed of {count} measurements: the gate could never fail"


def _promql_duration(v):
    return None if _PROMQL_DURATION_RE.match(v) else "must be a PromQL duration such as 30s, 1m or 5m"


def _duration(f, key, required=False, default=None, positive=False):
    """Seconds from `90`, `30s`, `5m`, `2h` or `7d`; negative is an error."""
    value = f.get(key, (int, str), required=required)
    if value is None:
        return default
    m = DURATION_RE.match(str(value).strip())
    if not m:
        raise f.error(key, f"must be a duration such as 30s, 5m, 2h or 7d, not {value!r}")
    seconds = int(m.group(1)) * _UNIT[m.group(2)]
    if seconds < 0:
        raise f.error(key, f"must not be negative, not {value!r}")
    if positive and seconds == 0:
        raise f.error(key, "must be longer than 0")
    return seconds


def _waves(doc, top):
    raw = top.get("waves", list, required=True, check=lambda v: None if v else "must list at least one wave")
    waves, last_percent, names = [], 0, set()
    for i, item in enumerate(raw):
        f = yamlsrc.Fields(doc, item, f"waves[{i}]")
        name = f.get("name", str, required=True,
                     check=lambda v: f"duplicate wave name {v!r}" if v in names else None)
        names.add(name)
        hosts = f.get("hosts", int, check=lambda v: None if 1 <= v <= 2 else
                      "a canary is 1 or 2 hosts (later waves are a `percent` of the fleet)")
        percent = f.get("percent", (int, float),
                        check=lambda v: None if 0 < v <= 100 else "must be above 0 and at most 100")
        if (hosts is None) == (percent is None):
            raise f.error("hosts", "give either `hosts` (the canary) or `percent`")
        if hosts is not None and i > 0:
            raise f.error("hosts", "only the first wave (the canary) is a host count; later waves are a `percent`")
        if percent is not None and percent <= last_percent:
            raise f.error("percent", f"percentages must rise strictly: {percent} after {last_percent}")
        last_percent = percent if percent is not None else last_percent
        waves.append(Wave(name, hosts, None if percent is None else float(percent), _duration(f, "bake", required=True)))
        f.done()
    if last_percent != 100:
        raise doc.error(f"the last wave must reach 100 percent, not {last_percent}", raw, len(raw) - 1,
                        field=f"waves[{len(raw) - 1}].percent")
    return tuple(waves)


def _gates(doc, top, base):
    raw = top.get("metrics", list, required=True, check=lambda v: None if v else "must list at least one metric")
    gates = []
    for i, item in enumerate(raw):
        f = yamlsrc.Fields(doc, item, f"metrics[{i}]")
        name = f.get("name", str, required=True)
        query = f.get("query", str)
        if query is None and name not in CATALOGUE:
            raise f.error("name", f"unknown metric {name!r} (known: {', '.join(CATALOGUE)}; or give `query`)")
        if query is None:
            metric = CATALOGUE[name]
        else:
            better = f.get("better", str, default="lower",
                           check=lambda v: None if v in ("lower", "higher") else "must be `lower` or `higher`")
            metric = Metric(name, query, better, f.get("unit", str, default=""), f.get("description", str, default=""))
        number = (int, float)
        high = f.get("max", number)
        low = f.get("min", number)
        relative = None
        rf = f.sub("relative")
        if rf is not None:
            relative = Relative(margin=_float(rf.get("margin", number, check=_not_negative)),
                                factor=_float(rf.get("factor", number,
                                                     check=lambda v: None if v > 0 else "must be above 0")))
            rf.done()
            if relative.margin is None and relative.factor is None:
                raise rf.error("margin", "give `margin` or `factor`")
        if high is None and low is None and relative is None:
            raise f.error("max", "give a threshold: `max`, `min` or `relative`")
        interval = _duration(f, "interval", default=base["interval"], positive=True)
        count = f.get("count", int, default=base["count"], check=_positive)
        limit = f.get("failure_limit", int, default=base["failure_limit"], check=_not_negative)
        if limit >= count:
            raise f.error("failure_limit", _never_fails(limit, count))
        window = f.get("window", str, default=base["window"], check=_promql_duration)
        f.done()
        gates.append(Gate(metric, _float(high), _float(low), relative, interval, count, limit, window,
                          line=doc.line(raw, i)))
    return tuple(gates)


def _float(v):
    return None if v is None else float(v)
