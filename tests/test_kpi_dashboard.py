"""The pictures and the scrape: the HTML dashboard rendered by a real headless Chromium (its SVG charts in
the DOM, a screenshot that is not blank), and the OpenMetrics text read by prometheus_client's parser and
checked by promtool."""

import datetime as dt
import re
import shutil
import subprocess

import numpy
import pytest
from matplotlib import image as mpimg
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from pipeline.kpi import dashboard, figures, openmetrics, store_dashboard
from pipeline.kpi.dashboard import CHART_IDS
from pipeline.kpi.emergencies import note_detected, note_published, note_rebuilt, note_rolled_out

from .test_kpi_figures import NOW, V2, V3, observed, recorded_store

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def report(tmp_path):
    store = recorded_store(tmp_path)
    note_detected(store, "CVE-2099-1001", version=V2, fleets=["web"], at=T0)
    note_rebuilt(store, "CVE-2099-1001", V3, started_at=T0, at=T0 + dt.timedelta(minutes=40))
    note_published(store, "CVE-2099-1001", V3, at=T0 + dt.timedelta(minutes=41))
    note_rolled_out(store, "CVE-2099-1001", "web", V3, T0 + dt.timedelta(minutes=95))
    note_detected(store, "CVE-2099-2002", version=V3, fleets=["web"], at=T0 + dt.timedelta(hours=20))
    return figures.figures(store, figures.select_fleets(store), observed(), NOW)


def chromium():
    path = shutil.which("chromium")
    if not path:
        pytest.fail("chromium is not installed: the dashboard must be proven in a real browser "
                    "(apt-get install chromium)")
    return path


def headless(tmp_path, *args):
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}/ud",
                           *args], capture_output=True, text=True, timeout=180)


def test_the_dashboard_renders_its_charts_in_headless_chromium(report, tmp_path):
    page = dashboard.write(report, str(tmp_path / "kpi.html"))
    dom = headless(tmp_path, "--dump-dom", f"file://{page}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for chart in CHART_IDS:
        assert f'<svg id="{chart}"' in dom.stdout
    assert "CVE-2099-1001" in dom.stdout and "CVE-2099-2002 (open)" in dom.stdout
    assert "golden-drift-probe" in dom.stdout                          # the drifted host's package, named
    html = open(page).read()
    assert "<script" not in html and not re.search(r"""(src|href)=["']?(https?:)?//""", html)   # nothing fetched
    shot = tmp_path / "kpi.png"
    run = headless(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", f"file://{page}")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    pixels = mpimg.imread(str(shot))[..., :3]
    inked = (pixels.min(axis=2) < 0.9).mean()
    colours = len(numpy.unique((pixels * 255).astype(int).reshape(-1, 3), axis=0))
    assert inked > 0.02 and colours > 50, (inked, colours)


def test_a_blank_page_fails_the_screenshot_check(tmp_path):
    (tmp_path / "blank.html").write_text("<!DOCTYPE html><html><body></body></html>")
    shot = tmp_path / "blank.png"
    assert headless(tmp_path, f"--screenshot={shot}", "--window-size=400,300", f"file://{tmp_path}/blank.html") \
        .returncode == 0
    assert (mpimg.imread(str(shot))[..., :3].min(axis=2) < 0.9).mean() < 0.02


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_openmetrics_parses_and_carries_the_figures(report):
    text = openmetrics.render(report)
    assert text.endswith("# EOF\n")
    got = samples(text)
    assert got[("golden_image_age_seconds", (("fleet", "web"), ("host", "web-3"), ("version", V2)))] == \
        report["image_age"][0]["max_seconds"]
    assert got[("golden_fleet_drift_packages", (("fleet", "web"), ("host", "web-2")))] == 3
    assert got[("golden_fleet_drift_packages", (("fleet", "web"), ("host", "web-1")))] == 0
    assert ("golden_fleet_drift_packages", (("fleet", "web"), ("host", "web-3"))) not in got     # unknown, not 0
    assert got[("golden_fleet_drift_known", (("fleet", "web"), ("host", "web-3")))] == 0
    assert got[("golden_rollouts_total", (("fleet", "web"), ("result", "rolled_back")))] == 1
    assert got[("golden_emergency_mttr_seconds", (("cve", "CVE-2099-1001"), ("phase", "total")))] == 95 * 60
    assert got[("golden_emergency_mttr_seconds", (("cve", "CVE-2099-1001"), ("phase", "rolled_out")))] == 54 * 60
    assert got[("golden_emergency_open", (("cve", "CVE-2099-2002"),))] == 1
    with pytest.raises(ValueError):                     # the parser is strict: a cut-off scrape is refused
        samples(text.replace("# EOF\n", ""))


def classic(text):
    """The OpenMetrics text re-exposed in Prometheus' text format, which promtool 2.42 lints."""
    registry = CollectorRegistry(auto_describe=False)
    families = list(text_string_to_metric_families(text))
    registry.register(type("Parsed", (), {"collect": lambda self: families})())
    return generate_latest(registry).decode()


def test_promtool_accepts_the_exposition(report):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool is not installed (apt-get install prometheus)")
    text = classic(openmetrics.render(report))
    ok = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert 'golden_rollouts_total{fleet="web",result="rolled_back"} 1.0' in text
    bad = text + "# HELP golden_hosts_total hosts\n# TYPE golden_hosts_total gauge\ngolden_hosts_total 3.0\n"
    linted = subprocess.run([promtool, "check", "metrics"], input=bad, capture_output=True, text=True, timeout=60)
    assert linted.returncode != 0 and "golden_hosts_total" in linted.stderr


def test_the_store_dashboard_is_refreshed_from_the_store_and_a_failure_only_says_why(tmp_path):
    """What a finished rollout calls: the store's own dashboard, where run and rollout reports link."""
    store = recorded_store(tmp_path)
    path = dashboard.refresh(store)
    assert path == store_dashboard(store.root) == str(tmp_path / "store" / "kpi" / "dashboard.html")
    page = open(path).read()
    assert all(f"id='{c}'" in page or f'id="{c}"' in page for c in CHART_IDS), CHART_IDS
    (tmp_path / "store" / "fleets" / "broken.json").write_text("{not json")
    said = []
    assert dashboard.refresh(store, said.append) is None
    assert len(said) == 1 and said[0].startswith("KPI dashboard not refreshed: ") and "broken" in said[0], said
