"""The HTML report of a run (`report.html` in the run directory), from reports/report.html.j2."""

import glob
import os

import jinja2

from pipeline.checks.catalogue import Catalogue, id_key
from pipeline.evidence.junit import JUnitError, parse_junit
from pipeline.paths import REPORTS_DIR
from pipeline.util import read_json

TEMPLATES = REPORTS_DIR
LOGS = ["packer-output.txt", "packer.log", "build-console.log", "boot/candidate-console.log", "pytest.log",
        "junit.xml", "gate.json", "timings.json", "artifact.json", "boot/boot.json", "packer-manifest.json"]


def _case_view(case, catalogue):
    p = case["properties"]
    cis_id = p.get("cis_id")
    rec = catalogue.by_id.get(cis_id) if cis_id else None
    return {"name": f"{case['classname']}::{case['name']}", "status": case["status"], "message": case["message"],
            "cis_id": cis_id, "title": p.get("title") or (rec.title if rec else None), "level": p.get("level"),
            "section": rec.section if rec else "acceptance"}


def render(run, kpi_link=None):
    """report.html in the run directory; KPI_LINK (a path or URL) to the store's KPI dashboard."""
    catalogue = Catalogue.load()
    gate = read_json(run.path("gate.json"), "gate record") if os.path.exists(run.path("gate.json")) else {}
    cases = []
    for path in sorted(glob.glob(run.path("junit*.xml"))):
        try:
            cases += [_case_view(c, catalogue) for c in parse_junit(path)]
        except JUnitError:
            pass
    failures = [c for c in cases if c["status"] in ("failed", "error")]
    groups = {}
    for c in cases:
        groups.setdefault(c["section"], []).append(c)
    order = sorted(groups, key=lambda s: (s == "acceptance", id_key(s) if s != "acceptance" else ()))
    sections = [{"id": s, "title": catalogue.sections.get(s, "Functional acceptance" if s == "acceptance" else ""),
                 "cases": sorted(groups[s], key=lambda c: (c["status"] not in ("failed", "error"),
                                                           id_key(c["cis_id"] or "0")))} for s in order]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    html = env.get_template("report.html.j2").render(
        version=run.version, meta=run.meta, gate=gate, timings=run.timings(), failures=failures,
        sections=sections, kpi_link=kpi_link, logs=[(n, n) for n in LOGS if os.path.exists(run.path(n))])
    out = run.path("report.html")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(html)
    return out
