"""`golden catalogue`: every recommendation with its status for a role and level.

    rows = coverage(role="general-purpose", level=2)
    # [{'id': '1.1.1.1', 'title': ..., 'level': 1, 'section': '1.1', 'status': 'checked', ...}, ...]

Statuses: checked (a check exists), manual (the benchmark says so: reviewed by hand),
not adopted (the baseline says why), not yet (automated, adopted, no check written),
above level (the role's level does not include it).
"""

import collections
import os

from pipeline.checks import scenarios
from pipeline.checks.baseline import Baseline
from pipeline.checks.catalogue import Catalogue
from pipeline.paths import ROOT


def coverage(role, level=None, baseline=None):
    catalogue = Catalogue.load()
    baseline = baseline or Baseline.load(catalogue=catalogue)
    level = level or baseline.level_for(role)
    defined = scenarios.collect(catalogue=catalogue, baseline=baseline)
    out = []
    for rec in catalogue:
        control = baseline.controls[rec.id]
        if not control.adopted or (control.roles is not None and role not in control.roles):
            status = "not adopted"
        elif control.level > level:
            status = "above level"
        elif rec.assessment == "manual":
            status = "manual"
        elif rec.id in defined:
            status = "checked"
        else:
            status = "not yet"
        out.append({"id": rec.id, "title": rec.title, "level": control.level, "cis_level": rec.level,
                    "section": rec.section, "chapter": rec.chapter, "assessment": rec.assessment,
                    "status": status, "check": os.path.relpath(defined[rec.id].where, ROOT) if rec.id in defined else None,
                    "why": control.why})
    return out


def summary(rows):
    """Counts by chapter and status, and by level and status."""
    by_chapter = collections.defaultdict(collections.Counter)
    by_level = collections.defaultdict(collections.Counter)
    for r in rows:
        by_chapter[r["chapter"]][r["status"]] += 1
        by_level[r["level"]][r["status"]] += 1
    return by_chapter, by_level
