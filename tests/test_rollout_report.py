"""The rollout report renders in a real browser: headless chromium shows the timeline and one chart per metric."""

import os
import shutil
import subprocess

import pytest

from pipeline.rollout.report import write_report

T0 = 1796166000.0


def measurement(metric, t, values, passed=True, **limits):
    return {"metric": metric, "at": "2026-12-01T23:00:00+00:00", "time": T0 + t, "values": values,
            "value": max(values.values()), "thresholds": limits, "baseline": None, "passed": passed, "reason": "x"}


def record(tmp_path):
    return {
        "id": "20261201T230000Z-1a2b", "fleet": "web", "kind": "rollout", "from": ["golden-web-2026.12.01+1"],
        "to": "golden-web-2026.12.01+3", "result": "rolled_back", "started_at": "2026-12-01T23:00:00+00:00",
        "finished_at": "2026-12-01T23:06:00+00:00", "reason": "wave canary: error_rate failed",
        "failure": {"wave": "canary", "metric": "error_rate", "value": 0.61, "threshold": "max 0.02", "reason": "x"},
        "waves": [{"name": "canary", "hosts": ["web-1"], "bake": 20, "started_at": "2026-12-01T23:00:00+00:00",
                   "finished_at": "2026-12-01T23:03:00+00:00", "result": "failed",
                   "replacements": [{"host": "web-1", "from": "a", "to": "c", "seconds": 71.5}],
                   "measurements": [measurement("error_rate", 0, {"web-1": 0.61}, False, max=0.02),
                                    measurement("latency_p90", 0, {"web-1": 0.01}, True, max=0.5, relative_max=0.02),
                                    measurement("latency_p90", 5, {"web-1": 0.012}, True, max=0.5, relative_max=0.02)]}],
        "rollback": {"replacements": [{"host": "web-1", "from": "c", "to": "a", "seconds": 70.1}]},
        "dir": str(tmp_path)}


def test_the_report_renders_its_timeline_and_a_chart_per_metric_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium")
    if not browser:
        pytest.fail("chromium is not installed (setup.sh installs the Debian package chromium)")
    path = write_report(record(tmp_path), kpi_link="../../../kpi.html")
    page = open(path).read()
    assert page.count("<svg") == 2 and "Stopped at wave <b>canary</b>: error_rate = 0.61 (threshold max 0.02)" in page
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", f"file://{path}"],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 2 and "web-1 71.5s" in dom.stdout and "KPI dashboard" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1000,1400", f"file://{path}"], capture_output=True, timeout=120)
    assert shot.exists() and os.path.getsize(shot) > 20000     # a blank page is a few kilobytes
