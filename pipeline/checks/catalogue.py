"""The CIS Debian Linux 12 Benchmark v1.1.0 recommendations (Level 1 and 2 Server profiles).

    cat = Catalogue.load()            # cis_checks/catalogue.yaml
    rec = cat["5.1.6"]                # Recommendation(id, title, level, assessment, section...)
    cat.matching("5.1.*")
"""

import fnmatch
import functools
import os
from dataclasses import dataclass

from pipeline import yamlsrc
from pipeline.paths import CHECKS_DIR

DEFAULT_PATH = os.path.join(CHECKS_DIR, "catalogue.yaml")


def id_key(cis_id):
    """Sort key in benchmark order: 1.1.10 after 1.1.9."""
    return tuple(int(p) if p.isdigit() else p for p in str(cis_id).split("."))


@dataclass(frozen=True)
class Recommendation:
    id: str
    title: str
    level: int
    assessment: str          # automated | manual
    section: str             # the group a report lists it under, e.g. "5.1"
    section_title: str
    chapter: str             # top-level section, e.g. "5"
    chapter_title: str


class Catalogue:
    def __init__(self, path, recommendations, sections, version):
        self.path = path
        self.recommendations = recommendations
        self.by_id = {r.id: r for r in recommendations}
        self.sections = sections
        self.version = version

    def __getitem__(self, cis_id):
        return self.by_id[cis_id]

    def __contains__(self, cis_id):
        return cis_id in self.by_id

    def __iter__(self):
        return iter(self.recommendations)

    def matching(self, pattern):
        return [r for r in self.recommendations if fnmatch.fnmatchcase(r.id, pattern)]

    @classmethod
    def load(cls, path=DEFAULT_PATH):
        return _load(os.path.abspath(path))


@functools.lru_cache(maxsize=4)
def _load(path):
    doc = yamlsrc.load(path)
    top = yamlsrc.Fields(doc, doc.data)
    top.get("benchmark", str, required=True)
    version = top.get("version", str, required=True)
    sections = {str(k): str(v) for k, v in (top.get("sections", dict, default={}) or {}).items()}
    recs, seen = [], set()
    raw = top.get("recommendations", list, required=True)
    top.done()
    for i, entry in enumerate(raw):
        f = yamlsrc.Fields(doc, entry, f"recommendations[{i}]")
        cis_id = f.get("id", str, required=True)
        if cis_id in seen:
            raise f.error("id", f"duplicate recommendation id {cis_id}")
        seen.add(cis_id)
        title = f.get("title", str, required=True)
        level = f.get("level", int, required=True, check=lambda v: None if v in (1, 2) else "must be 1 or 2")
        assessment = f.get("assessment", str, required=True,
                           check=lambda v: None if v in ("automated", "manual") else "must be automated or manual")
        f.done()
        parts = cis_id.split(".")
        section = ".".join(parts[:2]) if len(parts) > 2 else parts[0]
        chapter = parts[0]
        recs.append(Recommendation(cis_id, title, level, assessment, section, sections.get(section, ""),
                                   chapter, sections.get(chapter, "")))
    return Catalogue(path, recs, sections, version)
