"""Exceptions to the baseline as an operational contract: why, owner, expiry.

    excs = load(["cis_checks/exceptions"], baseline, images=known_image_names())
    exc = covering(excs, "1.1.2.3.1", role="bastion", image="jump", as_of=utc_today())   # or None
    exc.expired(as_of)            # expiry in UTC: an exception holds through its `expires` day

File format (cis_checks/exceptions/<team>.yaml):

    exceptions:
      - id: EXC-2026-014
        controls: ["1.1.2.3.1", "1.1.2.4.*"]      # CIS ids, globs allowed
        scope: {roles: [bastion], images: [jump]}  # roles and/or images
        why: Cloud images have one root filesystem; volumes are separated at the instance level.
        owner: platform-team@example.com
        approved_by: security-architecture@example.com
        ticket: SEC-1234
        expires: 2027-03-31
        mode: run                                  # run (default: still checked, failure = waived) | skip
"""

import datetime as dt
import fnmatch
import glob
import os
from dataclasses import dataclass

from pipeline import yamlsrc
from pipeline.errors import GoldenError
from pipeline.paths import CHECKS_DIR

DEFAULT_DIR = os.path.join(CHECKS_DIR, "exceptions")
MODES = ("run", "skip")


@dataclass(frozen=True)
class Exception_:
    id: str
    controls: tuple
    roles: tuple | None
    images: tuple | None
    why: str
    owner: str
    approved_by: str | None
    ticket: str | None
    expires: dt.date
    mode: str
    file: str
    line: int

    def matches(self, cis_id):
        return any(fnmatch.fnmatchcase(cis_id, p) for p in self.controls)

    def in_scope(self, role, image):
        return (self.roles is None or role in self.roles) and (self.images is None or image in self.images)

    def expired(self, as_of):
        return as_of > self.expires

    def days_left(self, as_of):
        return (self.expires - as_of).days

    def where(self):
        return f"{self.file}:{self.line}"

    def record(self):
        """What the JUnit, the gate record and the reports carry about it."""
        return {"id": self.id, "why": self.why, "owner": self.owner, "approved_by": self.approved_by,
                "ticket": self.ticket, "expires": self.expires.isoformat(), "mode": self.mode,
                "controls": list(self.controls), "file": self.where()}


def utc_today():
    return dt.datetime.now(dt.timezone.utc).date()


def as_of_day(text, what="--as-of"):
    """The day a command judges expiry on: `text` (YYYY-MM-DD) if given, else today (UTC)."""
    return parse_date(text, what) if text else utc_today()


def parse_date(text, what="date"):
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise GoldenError(f"must be a date YYYY-MM-DD, not {text!r}", field=what) from None


def files_in(paths):
    out = []
    for path in paths:
        if os.path.isdir(path):
            out += sorted(glob.glob(os.path.join(path, "*.yaml")) + glob.glob(os.path.join(path, "*.yml")))
        elif os.path.exists(path):
            out.append(path)
        else:
            raise GoldenError("no such exception file or directory", file=path)
    return out


def load(paths, baseline, images, today=None, horizon_days=None):
    """Load and validate exception files; every problem is an error naming file, line and reason."""
    today = today or utc_today()
    horizon = horizon_days if horizon_days is not None else baseline.exception_horizon_days
    catalogue = baseline.catalogue
    out = []
    for path in files_in(paths):
        doc = yamlsrc.load(path)
        if doc.data is None:
            continue
        top = yamlsrc.Fields(doc, doc.data)
        entries = top.get("exceptions", list, required=True)
        top.done()
        for i, raw in enumerate(entries):
            out.append(_one(doc, raw, i, catalogue, baseline, images, today, horizon))
    _no_duplicates(out, catalogue, images, baseline.roles)
    return out


def _one(doc, raw, i, catalogue, baseline, images, today, horizon):
    f = yamlsrc.Fields(doc, raw, f"exceptions[{i}]")
    exc_id = f.get("id", str, required=True, check=lambda v: None if v.strip() else "must not be empty")
    controls = f.get("controls", list, required=True, check=lambda v: None if v else "must list CIS ids")
    for j, pattern in enumerate(controls):
        if not isinstance(pattern, str) or not catalogue.matching(pattern):
            raise doc.error(f"unknown CIS id {pattern!r} (matches no recommendation of the catalogue)",
                            raw["controls"], j, field=f"exceptions[{i}].controls[{j}]")
    scope = f.sub("scope", required=True)
    roles = scope.get("roles", list)
    imgs = scope.get("images", list)
    if roles is None and imgs is None:
        raise scope.error("roles", "must name roles and/or images (an exception is never global)")
    for name in roles or ():
        if name not in baseline.roles:
            raise scope.error("roles", f"unknown role {name!r} (known: {', '.join(baseline.roles)})")
    for name in imgs or ():
        if name not in images:
            raise scope.error("images", f"unknown image {name!r} (image specs: {', '.join(sorted(images)) or 'none'})")
    scope.done()
    nonempty = lambda v: None if v.strip() else "must not be empty"  # noqa: E731
    why = f.get("why", str, required=True, check=nonempty)
    owner = f.get("owner", str, required=True, check=nonempty)
    approved_by = f.get("approved_by", str)
    ticket = f.get("ticket", (str, int))
    raw_expires = f.get("expires", (dt.date, str), required=True)
    try:
        expires = parse_date(raw_expires)
    except GoldenError as exc:
        raise f.error("expires", exc.reason) from None
    if (expires - today).days > horizon:
        raise f.error("expires", f"{expires} is {(expires - today).days} days away; the longest allowed is "
                                 f"{horizon} days (until {today + dt.timedelta(days=horizon)})")
    mode = f.get("mode", str, default="run",
                 check=lambda v: None if v in MODES else f"must be one of {', '.join(MODES)}")
    f.done()
    return Exception_(exc_id, tuple(controls), tuple(roles) if roles is not None else None,
                      tuple(imgs) if imgs is not None else None, why, owner, approved_by,
                      str(ticket) if ticket is not None else None, expires, mode, doc.path, doc.line(raw))


def _overlap(a, b, images, roles):
    """Could one image be in both scopes: a known image, or a future image of a role both name?"""
    return (any(a.in_scope(role, image) and b.in_scope(role, image) for image, role in images.items())
            or any(a.in_scope(role, None) and b.in_scope(role, None) for role in roles))


def _no_duplicates(excs, catalogue, images, roles):
    seen_ids = {}
    for e in excs:
        if e.id in seen_ids:
            raise GoldenError(f"duplicate exception id {e.id} (also at {seen_ids[e.id].where()})",
                              file=e.file, line=e.line, field="id")
        seen_ids[e.id] = e
    for a_index, a in enumerate(excs):
        for b in excs[a_index + 1:]:
            if not _overlap(a, b, images, roles):
                continue
            common = [r.id for r in catalogue if a.matches(r.id) and b.matches(r.id)]
            if common:
                raise GoldenError(f"{b.id} and {a.id} (at {a.where()}) both cover CIS {common[0]} for an "
                                  "overlapping scope; one control and scope can have one exception",
                                  file=b.file, line=b.line, field="controls")


def matching(excs, cis_id, role, image):
    """The exception written for this control and scope, expired or not (waivers judge expiry
    themselves, so an expired one is reported as such)."""
    for e in excs:
        if e.matches(cis_id) and e.in_scope(role, image):
            return e
    return None


def covering(excs, cis_id, role, image, as_of):
    """The exception that excuses this control on `as_of`: an expired one excuses nothing."""
    exc = matching(excs, cis_id, role, image)
    return exc if exc is not None and not exc.expired(as_of) else None


def in_scope(excs, role, image):
    return [e for e in excs if e.in_scope(role, image)]


def review(excs, baseline, as_of, images_roles, results=None, soon_days=30):
    """Sort exceptions into active / expiring / expired / stale.

    images_roles: {image name: role}. results: {cis_id: status} from a run's JUnit, if any;
    an exception covering a control that passed there is stale.
    """
    out = {"active": [], "expiring": [], "expired": [], "stale": []}
    for e in excs:
        scopes = [(role, None) for role in (e.roles or ())] + [(images_roles[i], i) for i in (e.images or ())
                                                               if i in images_roles]
        applicable = [r.id for r in baseline.catalogue if e.matches(r.id) and r.assessment == "automated" and any(
            baseline.applies(r.id, role) for role, _ in scopes)]
        entry = dict(e.record(), days_left=e.days_left(as_of), applicable=applicable)
        if e.expired(as_of):
            out["expired"].append(entry)
        elif e.days_left(as_of) <= soon_days:
            out["expiring"].append(entry)
        else:
            out["active"].append(entry)
        if not applicable:
            out["stale"].append(dict(entry, stale_because="covers no control adopted for its scope"))
        elif results is not None:
            passed = [c for c in applicable if results.get(c) == "passed"]
            if passed and len(passed) == len([c for c in applicable if c in results]):
                out["stale"].append(dict(entry, stale_because=f"every covered control passed ({', '.join(passed)})"))
    return out
