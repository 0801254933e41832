"""The metrics a rollout gate can use: one PromQL template per metric, and the names of the series behind them.

    q = render(CATALOGUE["error_rate"].query, hosts=["web-1"], versions=["golden-web-2026.12.01+1"], window="1m")
    rules_yaml(CATALOGUE.values())      # the same templates as Prometheus recording rules

A template selects hosts with `{hosts}` and `{versions}` (regex alternations filled by `render`) and
uses `{window}` as the range of rate()/increase(); it must return one sample per host with a `host`
label. Every scrape target carries the labels `host`, `version` and `fleet` (set by the scrape config
of pipeline.rollout.prometheus; the load generator sets `host` and `version` on its own series).
"""

import re
from dataclasses import dataclass

import yaml

# Series the load generator exports (pipeline.rollout.loadgen), labels: host, version, code / le.
REQUESTS_TOTAL = "golden_loadgen_requests_total"
REQUEST_DURATION = "golden_loadgen_request_duration_seconds"
ERROR_CODE = "error"  # the `code` of a request that got no HTTP answer (refused, reset, timeout)

# Exported by the image through the node exporter's textfile collector (file golden_kernel_log.prom):
# kernel messages of priority err or worse since boot (`journalctl -k -b -p err`), no labels of its
# own; Prometheus adds host/version/fleet from the scrape target.
KERNEL_LOG_ERRORS = "golden_kernel_log_errors_total"

_SELECT = 'host=~"{hosts}",version=~"{versions}"'


@dataclass(frozen=True)
class Metric:
    name: str
    query: str           # PromQL template, see the module docstring
    better: str          # "lower" or "higher": the direction of a relative check
    unit: str
    description: str


CATALOGUE = {m.name: m for m in (
    Metric("error_rate",
           # `or … * 0`: a host that never failed has no error series, and must read 0, not "no data".
           f'(sum by (host) (rate({REQUESTS_TOTAL}{{{_SELECT},code=~"5..|{ERROR_CODE}"}}[{{window}}]))'
           f' or 0 * sum by (host) (rate({REQUESTS_TOTAL}{{{_SELECT}}}[{{window}}])))'
           f' / sum by (host) (rate({REQUESTS_TOTAL}{{{_SELECT}}}[{{window}}]))',
           "lower", "ratio", "share of the load generator's requests answered 5xx or not answered"),
    Metric("latency_p90",
           f"histogram_quantile(0.9, sum by (host, le) (rate({REQUEST_DURATION}_bucket{{{_SELECT}}}[{{window}}])))",
           "lower", "seconds", "90th percentile of the load generator's request latency"),
    Metric("cpu",
           f'1 - avg by (host) (rate(node_cpu_seconds_total{{mode="idle",{_SELECT}}}[{{window}}]))',
           "lower", "ratio", "CPU busy share (node exporter)"),
    Metric("memory_available",
           f"max by (host) (node_memory_MemAvailable_bytes{{{_SELECT}}})"
           f" / max by (host) (node_memory_MemTotal_bytes{{{_SELECT}}})",
           "higher", "ratio", "memory available share (node exporter)"),
    Metric("kernel_log_errors",
           f"max by (host) ({KERNEL_LOG_ERRORS}{{{_SELECT}}})",
           "lower", "messages", "kernel messages of priority err or worse since boot"),
)}


def alternation(values):
    """A PromQL regex matching exactly these label values (`.+` when none are given)."""
    values = sorted(set(values))
    return "|".join(re.escape(v) for v in values) if values else ".+"


def render(template, hosts=(), versions=(), window="1m"):
    """The query for these hosts and versions; an empty list matches every value."""
    return (template.replace("{hosts}", alternation(hosts).replace("\\", "\\\\"))
            .replace("{versions}", alternation(versions).replace("\\", "\\\\"))
            .replace("{window}", window))


def rules_yaml(metrics, window="1m"):
    """Prometheus recording rules `golden:<metric>` for every host (tested offline with promtool)."""
    rules = [{"record": f"golden:{m.name}", "expr": render(m.query, window=window)} for m in metrics]
    return yaml.safe_dump({"groups": [{"name": "golden-rollout", "rules": rules}]}, sort_keys=False)
