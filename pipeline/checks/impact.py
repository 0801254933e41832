"""`golden impact`: what a change to the baseline, the exceptions or the checks does, and to whom,
before it merges.

    report = impact("origin/main", "HEAD")     # two git refs of this repository, or two checkouts
    print(markdown(report))                     # for a merge-request comment; json.dumps(report) too
"""

import contextlib
import os
import shutil
import subprocess
import tempfile

from pipeline.checks import exceptions as exc_mod
from pipeline.checks import scenarios
from pipeline.checks.baseline import Baseline
from pipeline.checks.catalogue import Catalogue, id_key
from pipeline.checks.kinds import KINDS
from pipeline.errors import GoldenError
from pipeline.image.spec import known_images
from pipeline.paths import ROOT

TREE_PARTS = ("cis_checks", "images", "feeds")   # specs name feeds by relative path


@contextlib.contextmanager
def tree(ref):
    """A directory holding cis_checks/ and images/ as they are at `ref` (a git ref or a directory)."""
    if os.path.isdir(os.path.join(ref, "cis_checks")):
        yield os.path.abspath(ref)
        return
    tmp = tempfile.mkdtemp(prefix="golden-impact-")
    try:
        archive = subprocess.run(["git", "-C", ROOT, "archive", ref, *TREE_PARTS], capture_output=True)
        if archive.returncode != 0:
            raise GoldenError(f"{ref!r} is neither a directory with cis_checks/ nor a git ref of this "
                              f"repository: {archive.stderr.decode().strip()}", field="ref")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _state(root, today):
    checks = os.path.join(root, "cis_checks")
    catalogue = Catalogue.load(os.path.join(checks, "catalogue.yaml"))
    baseline = Baseline.load(os.path.join(checks, "baseline.yaml"), catalogue)
    images = known_images(os.path.join(root, "images"), baseline)
    excs = exc_mod.load([os.path.join(checks, "exceptions")], baseline, images, today=today,
                        horizon_days=10 ** 4) if os.path.isdir(os.path.join(checks, "exceptions")) else []
    defined = scenarios.collect(checks, catalogue, baseline)
    return {"catalogue": catalogue, "baseline": baseline, "images": images, "exceptions": excs, "defined": defined}


def _control(state, cis_id):
    b = state["baseline"]
    c = b.controls.get(cis_id)
    if c is None:
        return None
    return {"adopted": c.adopted, "level": c.level, "roles": list(c.roles) if c.roles else None,
            "values": c.values, "checked": cis_id in state["defined"],
            "violate": state["defined"][cis_id].script if cis_id in state["defined"] else None}


def _who(states, cis_id):
    roles, services = set(), set()
    for st in states:
        b = st["baseline"]
        if cis_id not in b.controls:
            continue
        roles |= {r for r in b.roles if b.applies(cis_id, r)}
        for kind, value in b.values(cis_id).items():
            services |= KINDS[kind].services_of(value) if kind in KINDS else set()
    images = sorted({name for st in states for name, role in st["images"].items() if role in roles})
    return sorted(roles), images, sorted(services) or ["(logic-shaped: see the check)"]


def impact(ref_from, ref_to, today=None, soon_days=30):
    today = today or exc_mod.utc_today()
    with tree(ref_from) as a, tree(ref_to) as b:
        old, new = _state(a, today), _state(b, today)
    controls = []
    ids = sorted(set(old["catalogue"].by_id) | set(new["catalogue"].by_id), key=id_key)
    for cis_id in ids:
        before, after = _control(old, cis_id), _control(new, cis_id)
        if before == after:
            continue
        was = bool(before and before["adopted"] and before["checked"])
        now = bool(after and after["adopted"] and after["checked"])
        change = "added" if now and not was else "removed" if was and not now else "changed"
        what = [k for k in ("adopted", "level", "roles", "values", "checked", "violate")
                if (before or {}).get(k) != (after or {}).get(k)]
        roles, images, services = _who([old, new], cis_id)
        rec = (new["catalogue"].by_id.get(cis_id) or old["catalogue"].by_id.get(cis_id))
        controls.append({"id": cis_id, "title": rec.title, "change": change, "fields": what,
                         "before": before, "after": after, "roles": roles, "images": images, "services": services})
    old_exc = {e.id: e for e in old["exceptions"]}
    new_exc = {e.id: e for e in new["exceptions"]}
    excs = []
    for eid in sorted(set(old_exc) | set(new_exc)):
        a_, b_ = old_exc.get(eid), new_exc.get(eid)
        ra, rb = (a_.record() if a_ else None), (b_.record() if b_ else None)
        for r in (ra, rb):
            if r:
                r.pop("file")
        cur = b_ or a_
        change = "added" if not a_ else "removed" if not b_ else "changed" if ra != rb else None
        expiring = bool(b_) and b_.days_left(today) <= soon_days
        if change is None and not expiring:
            continue
        scope_images = sorted(n for n, role in new["images"].items() if cur.in_scope(role, n))
        excs.append({"id": eid, "change": change or "expiring", "expiring": expiring, "before": ra, "after": rb,
                     "controls": list(cur.controls), "scope": {"roles": list(cur.roles or []),
                                                               "images": list(cur.images or [])},
                     "images": scope_images,
                     "owner": cur.owner, "expires": cur.expires.isoformat(), "days_left": cur.days_left(today)})
    return {"from": ref_from, "to": ref_to, "as_of": today.isoformat(), "controls": controls, "exceptions": excs,
            "summary": {"controls_added": sum(c["change"] == "added" for c in controls),
                        "controls_removed": sum(c["change"] == "removed" for c in controls),
                        "controls_changed": sum(c["change"] == "changed" for c in controls),
                        "exceptions_added": sum(e["change"] == "added" for e in excs),
                        "exceptions_removed": sum(e["change"] == "removed" for e in excs),
                        "exceptions_expiring": sum(e["expiring"] for e in excs),
                        "images_affected": sorted({i for c in controls for i in c["images"]} |
                                                  {i for e in excs for i in e["images"]})}}


def _short(value):
    if value is None:
        return "—"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def markdown(report):
    s = report["summary"]
    lines = [f"## Baseline impact: `{report['from']}` → `{report['to']}`", "",
             f"{s['controls_added']} control(s) added, {s['controls_removed']} removed, {s['controls_changed']} changed; "
             f"{s['exceptions_added']} exception(s) added, {s['exceptions_removed']} removed, "
             f"{s['exceptions_expiring']} expiring within 30 days (as of {report['as_of']}).", "",
             "Images affected: " + (", ".join(f"`{i}`" for i in s["images_affected"]) or "none"), ""]
    if report["controls"]:
        lines += ["### Controls", "", "| CIS id | change | what changed | roles | images | services |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for c in report["controls"]:
            details = "; ".join(f"{k}: {_short((c['before'] or {}).get(k))} → {_short((c['after'] or {}).get(k))}"
                                for k in c["fields"] if k != "violate") or "violation scenario"
            lines.append(f"| {c['id']} {c['title']} | {c['change']} | {details} | {', '.join(c['roles']) or '—'} | "
                         f"{', '.join(c['images']) or '—'} | {', '.join(c['services'])} |")
        lines.append("")
    if report["exceptions"]:
        lines += ["### Exceptions", "", "| id | change | controls | scope | images | owner | expires |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for e in report["exceptions"]:
            change = e["change"] + (" (expiring)" if e["expiring"] and e["change"] != "expiring" else "")
            scope = "; ".join(f"{k}: {', '.join(v)}" for k, v in e["scope"].items() if v)
            lines.append(f"| {e['id']} | {change} | {', '.join(e['controls'])} | {scope} | "
                         f"{', '.join(e['images']) or '—'} | {e['owner']} | {e['expires']} ({e['days_left']:+d} d) |")
        lines.append("")
    return "\n".join(lines)
