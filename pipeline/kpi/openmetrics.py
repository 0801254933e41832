"""`golden kpi --openmetrics`: the KPIs as OpenMetrics text for a Prometheus scrape (textfile or HTTP).

    text = render(report)       # "# TYPE golden_image_age_seconds gauge ... # EOF"

Families: golden_image_age_seconds{fleet,host,version}, golden_fleet_drift_packages{fleet,host} (hosts that
could be asked; the others have golden_fleet_drift_known 0), golden_rollouts_total{fleet,result} (rollouts
started in the report's range), golden_rollback_ratio{fleet} and golden_rollback_budget_ratio{fleet} (the
current period and its budget), golden_emergency_mttr_seconds{cve,phase} (each phase, and `total`: to
repair, or elapsed while open) and golden_emergency_open{cve}.
"""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from pipeline.kpi.budget import RESULTS


class _Report:
    """A prometheus_client collector over one KPI report."""

    def __init__(self, report):
        self.report = report

    def collect(self):
        r = self.report
        age = GaugeMetricFamily("golden_image_age_seconds", "age of the image a host runs, from its build",
                                labels=["fleet", "host", "version"], unit="seconds")
        for fleet in r["image_age"]:
            for h in fleet["hosts"]:
                if h["age_seconds"] is not None:
                    age.add_metric([fleet["fleet"], h["host"], h["version"]], h["age_seconds"])
        drifted = GaugeMetricFamily("golden_fleet_drift_packages", "packages added, removed or changed on a "
                                    "host against its image's SBOM", labels=["fleet", "host"])
        known = GaugeMetricFamily("golden_fleet_drift_known", "1 if the host's packages could be asked",
                                  labels=["fleet", "host"])
        for fleet in r["drift"]["fleets"]:
            for h in fleet["hosts"]:
                known.add_metric([fleet["fleet"], h["host"]], 0 if h["packages"] is None else 1)
                if h["packages"] is not None:
                    drifted.add_metric([fleet["fleet"], h["host"]], h["packages"])
        rollouts = CounterMetricFamily("golden_rollouts", "rollouts started, by result", labels=["fleet", "result"])
        ratio = GaugeMetricFamily("golden_rollback_ratio", "rolled-back rollouts over all started in the current "
                                  "budget period", labels=["fleet"])
        allowed = GaugeMetricFamily("golden_rollback_budget_ratio", "the policy's max_ratio", labels=["fleet"])
        for b in r["failure_budget"]:
            for result in RESULTS:
                rollouts.add_metric([b["fleet"], result], sum(p[result] for p in b.get("periods", [])))
            if b.get("current"):
                allowed.add_metric([b["fleet"]], b["max_ratio"])
                if b["current"]["ratio"] is not None:
                    ratio.add_metric([b["fleet"]], b["current"]["ratio"])
        mttr = GaugeMetricFamily("golden_emergency_mttr_seconds", "seconds of each phase of an emergency's "
                                 "repair; total: detection to the last affected fleet rolled out (elapsed while "
                                 "open)", labels=["cve", "phase"], unit="seconds")
        open_ = GaugeMetricFamily("golden_emergency_open", "1 while an affected fleet is not rolled out",
                                  labels=["cve"])
        for e in r["mttr"]["emergencies"]:
            for phase, seconds in e["phases"].items():
                mttr.add_metric([e["cve"], phase], seconds)
            if e["seconds"] is not None:
                mttr.add_metric([e["cve"], "total"], e["seconds"])
            open_.add_metric([e["cve"]], 1 if e["state"] == "open" else 0)
        yield from (age, drifted, known, rollouts, ratio, allowed, mttr, open_)


def render(report):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Report(report))
    return generate_latest(registry).decode("utf-8")
