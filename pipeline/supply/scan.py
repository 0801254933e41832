"""`golden scan`: match an SBOM's source packages against offline feeds, and gate on a policy.

    feeds = load_feeds({"debian-tracker": "tracker.json", "osv": "Debian-all.zip"}, cache_dir)
    result = scan(read_json("runs/<v>/sbom.cdx.json"), feeds, load_policy(None, now=now), now)
    write_scan(run, result)         # runs/<v>/scan.json (summary, findings) and scan.cdx.json (SBOM + vulnerabilities)

Debian tracks vulnerabilities per SOURCE package, so findings are matched on the SBOM's source
components (name and version) with dpkg version ordering (python-debian's Version: epochs, `~`,
`+debNuM`, binNMU `+bN`), never by string comparison. Each finding has one state:

| state | from the tracker (release of the image, e.g. bookworm) | from OSV (`Debian:12`) |
| --- | --- | --- |
| fixed-available | resolved, installed < fixed_version | in a range, a `fixed` event above the installed version |
| not-affected | resolved with fixed_version "0" (never affected), installed >= fixed_version, or resolved with no version | not in any range |
| unimportant | not resolved, urgency unimportant | in a range, no fix, ecosystem_specific.urgency unimportant |
| will-not-fix | not resolved, `nodsa` set (no-dsa, postponed, ignored) or urgency end-of-life | – |
| undetermined | status undetermined | – |
| open | status open | in a range, no fix |

The kernel is the one source package Debian builds twice: `linux-image-*` binaries come from
`linux-signed-<arch>` (version `6.1.192+2`), which neither feed tracks; they are matched as `linux`
at the version the signed package was made from (`6.1.192-2`: its first `+` back to `-`).

When both feeds know a CVE for a package, the tracker's state wins (it alone knows `nodsa`), except
that a fix either feed shows above the installed version makes it fixed-available. Ages of fixable
findings come from OSV `published` (the tracker JSON has no dates); a finding only the tracker
knows has no age, and `max_age_days` does not apply to it.
"""

import dataclasses
import datetime as dt
import fnmatch
import json
import os
import re
import urllib.parse

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.impact_analysis import (
    ImpactAnalysisAffectedStatus,
    ImpactAnalysisJustification,
    ImpactAnalysisResponse,
    ImpactAnalysisState,
)
from cyclonedx.model.vulnerability import (
    BomTarget,
    BomTargetVersionRange,
    Vulnerability,
    VulnerabilityAnalysis,
    VulnerabilityRating,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6
from debian.debian_support import Version

from pipeline import yamlsrc
from pipeline.errors import GoldenError
from pipeline.supply.feeds import load_feeds  # noqa: F401  (re-exported: scan's callers load feeds from here)
from pipeline.store.version import Version as ImageVersion
from pipeline.supply.packages import image_of, load_index, sources_of
from pipeline.supply.sbom import SBOM_FILE
from pipeline.util import write_json_atomic

STATES = ("fixed-available", "open", "undetermined", "will-not-fix", "unimportant", "not-affected")
URGENCIES = ("unimportant", "low", "medium", "high")
UNASSIGNED = "not yet assigned"
DEFAULT_POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scan-policy.yaml")
SCAN_FILE, VEX_FILE = "scan.json", "scan.cdx.json"
_CVE_GLOB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9*?._-]*$")


def dpkg_version(text, file=None, field=None):
    """A python-debian Version, or a GoldenError naming where the bad version came from."""
    try:
        return Version(str(text))
    except ValueError as exc:
        raise GoldenError(f"not a Debian version: {text!r} ({exc})", file=file, field=field) from None


# ---------------------------------------------------------------- policy


@dataclasses.dataclass
class Acceptance:
    id: str
    cves: list
    images: list
    why: str
    owner: str
    approved_by: str
    ticket: str
    expires: dt.date
    file: str
    line: int

    def covers(self, cve, image):
        return any(fnmatch.fnmatchcase(cve, p) for p in self.cves) and (
            not self.images or any(fnmatch.fnmatchcase(image, p) for p in self.images))

    def expired(self, now):
        return now.astimezone(dt.timezone.utc).date() > self.expires

    def summary(self):
        return {"id": self.id, "owner": self.owner, "approved_by": self.approved_by, "ticket": self.ticket,
                "expires": self.expires.isoformat(), "why": self.why, "file": f"{self.file}:{self.line}"}


@dataclasses.dataclass
class Policy:
    path: str
    fixable_at_or_above: str
    open_at_or_above: str
    unassigned_urgency: str
    max_age_days: int
    horizon_days: int
    acceptances: list

    def rank(self, urgency):
        urgency = self.unassigned_urgency if urgency in (UNASSIGNED, None, "") else urgency
        return URGENCIES.index(urgency) if urgency in URGENCIES else -1


def load_policy(path=None, *, now=None):
    """The scan policy: the file at `path` over pipeline/supply/scan-policy.yaml (keys it omits keep the default)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    default = _parse_policy(yamlsrc.load(DEFAULT_POLICY), None, now)
    return default if path is None else _parse_policy(yamlsrc.load(path), default, now)


def _urgency_check(value):
    return None if value in URGENCIES else f"must be one of {', '.join(URGENCIES)}, not {value!r}"


def _optional(fields, key, types, default, check=None):
    """A key's value; a key written with no value is an explicit "off" (None), an absent one the default."""
    if key in fields.mapping and fields.mapping[key] is None:
        fields.seen.add(key)
        return None
    return fields.get(key, types, default=default, check=check)


def _parse_policy(doc, default, now):
    f = yamlsrc.Fields(doc, doc.data if doc.data is not None else yamlsrc.LineDict())
    d = default or Policy(path=None, fixable_at_or_above=None, open_at_or_above=None, unassigned_urgency="high",
                          max_age_days=None, horizon_days=180, acceptances=[])
    fail_on = f.sub("fail_on") or yamlsrc.Fields(doc, yamlsrc.LineDict(), "fail_on")
    fixable = _optional(fail_on, "fixable_at_or_above", str, d.fixable_at_or_above, _urgency_check)
    open_ = _optional(fail_on, "open_at_or_above", str, d.open_at_or_above, _urgency_check)
    fail_on.done()
    positive = lambda v: None if v >= 0 else "must be 0 or more"  # noqa: E731
    policy = Policy(
        path=doc.path, fixable_at_or_above=fixable, open_at_or_above=open_,
        unassigned_urgency=f.get("unassigned_urgency", str, default=d.unassigned_urgency, check=_urgency_check),
        max_age_days=_optional(f, "max_age_days", int, d.max_age_days, positive),
        horizon_days=f.get("acceptance_horizon_days", int, default=d.horizon_days, check=positive),
        acceptances=[])
    accept = f.get("accept", list, default=[])
    f.done()
    seen = {}
    for i, item in enumerate(accept):
        acc = _parse_acceptance(doc, item, f"accept[{i}]", accept.lines.get(i), policy.horizon_days, now)
        for other in policy.acceptances:
            if other.id == acc.id:
                raise GoldenError(f"duplicate acceptance id (first at line {other.line})", file=doc.path,
                                  line=doc.line(item, "id"), field=f"accept[{i}].id")
        for pattern in acc.cves:
            for image in acc.images or ["*"]:
                if (pattern, image) in seen:
                    raise GoldenError(f"{pattern} is already accepted for images {image!r} by "
                                      f"{seen[(pattern, image)]}", file=doc.path, line=doc.line(item, "cves"),
                                      field=f"accept[{i}].cves")
                seen[(pattern, image)] = acc.id
        policy.acceptances.append(acc)
    return policy


def _parse_acceptance(doc, item, prefix, line, horizon_days, now):
    f = yamlsrc.Fields(doc, item, prefix)
    text = lambda v: None if v.strip() else "must not be empty"  # noqa: E731
    acc_id = f.get("id", str, required=True, check=text)
    cves = f.get("cves", list, required=True, check=lambda v: None if v else "must list at least one CVE")
    for j, pattern in enumerate(cves):
        if not isinstance(pattern, str) or not _CVE_GLOB.match(pattern):
            raise GoldenError(f"not a CVE id or glob: {pattern!r}", file=doc.path, line=cves.lines.get(j),
                              field=f"{prefix}.cves[{j}]")
    images = f.get("images", list, default=[])
    why = f.get("why", str, required=True, check=text)
    owner = f.get("owner", str, required=True, check=text)
    approved_by = f.get("approved_by", str)
    ticket = f.get("ticket", (str, int))
    expires = f.get("expires", (dt.date, str), required=True)
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            raise f.error("expires", f"must be a date YYYY-MM-DD, not {expires!r}") from None
    elif isinstance(expires, dt.datetime):
        expires = expires.date()
    latest = now.astimezone(dt.timezone.utc).date() + dt.timedelta(days=horizon_days)
    if expires > latest:
        raise f.error("expires", f"{expires} is beyond the {horizon_days}-day horizon (latest allowed {latest})")
    f.done()
    return Acceptance(id=acc_id, cves=list(cves), images=[str(i) for i in images], why=why.strip(),
                      owner=owner.strip(), approved_by=approved_by, ticket=None if ticket is None else str(ticket),
                      expires=expires, file=doc.path, line=getattr(item, "line", line))


# ---------------------------------------------------------------- matching


def _urgency(value):
    value = (value or UNASSIGNED).strip().lower().rstrip("*")
    return value or UNASSIGNED


def tracker_finding(entry, release, installed, file=None, field=None):
    """(state, fixed_version) of one tracker entry for the image's release, or None if it has no say."""
    rel = entry.get("releases", {}).get(release)
    if not rel:
        return None
    status, fixed, urgency = rel.get("status"), rel.get("fixed_version"), _urgency(rel.get("urgency"))
    if status == "resolved":
        if not fixed or fixed == "0":
            return "not-affected", fixed
        if installed >= dpkg_version(fixed, file, f"{field}.fixed_version"):
            return "not-affected", fixed
        return "fixed-available", fixed
    if status not in ("open", "undetermined"):
        raise GoldenError(f"unknown status {status!r} (known: resolved, open, undetermined)", file=file,
                          field=f"{field}.status")
    if urgency == "unimportant":
        return "unimportant", None
    if "nodsa" in rel or urgency == "end-of-life":
        return "will-not-fix", None
    return status, None


def osv_finding(affected, installed, file=None):
    """(state, fixed_version) of one OSV `affected` entry for an installed version (OSV range semantics)."""
    inside, fixes = False, []
    for rng in affected.get("ranges", []):
        if rng.get("type") != "ECOSYSTEM":
            continue
        hit = False
        events = rng.get("events", [])
        # OSV: apply the events in version order; "0" (or absent) introduces from the beginning.
        keyed = sorted(events, key=lambda e: (Version("0") if next(iter(e.values())) == "0" else
                                              dpkg_version(next(iter(e.values())), file, "ranges.events")))
        for event in keyed:
            kind, value = next(iter(event.items()))
            if kind == "introduced" and (value == "0" or installed >= dpkg_version(value, file, "introduced")):
                hit = True
            elif kind == "fixed":
                fixed = dpkg_version(value, file, "fixed")
                fixes.append(fixed)
                if installed >= fixed:
                    hit = False
            elif kind == "last_affected" and installed > dpkg_version(value, file, "last_affected"):
                hit = False
        inside = inside or hit
    if str(installed) in affected.get("versions", []):
        inside = True
    if not inside:
        return "not-affected", None
    newer = sorted(v for v in fixes if v > installed)
    if newer:
        return "fixed-available", str(newer[0])
    urgency = _urgency((affected.get("ecosystem_specific") or {}).get("urgency"))
    return ("unimportant" if urgency == "unimportant" else "open"), None


def _cves(record):
    ids = [record["id"]] + list(record.get("aliases", [])) + list(record.get("upstream", [])) + \
        list(record.get("related", []))
    cves = sorted({i for i in ids if isinstance(i, str) and i.startswith("CVE-")})
    return cves or [record["id"]]


def _published(record):
    try:
        return dt.datetime.fromisoformat(record["published"].replace("Z", "+00:00"))
    except (KeyError, AttributeError, ValueError):
        return None


def match(sources, feeds, *, release, ecosystem, now, only_cve=None):
    """Findings for the source packages [{name, version, binaries, tracked}] of an image (not-affected included)."""
    found = {}
    for src in sources:
        name, version = src.get("tracked") or (src["name"], src["version"])
        installed = dpkg_version(version, SBOM_FILE, f"components.{src['name']}.version")
        key_base = (name, version)
        tracker_file = feeds.tracker_files.get(name)
        for cve, entry in feeds.tracker.get(name, {}).items():
            if only_cve and cve != only_cve:
                continue
            got = tracker_finding(entry, release, installed, tracker_file, f"{name}.{cve}.releases.{release}")
            if got is None:
                continue
            rel = entry["releases"][release]
            found[(cve,) + key_base] = _finding(
                cve, src, name, version, state=got[0], fixed=got[1], urgency=_urgency(rel.get("urgency")),
                description=entry.get("description"), source="debian-tracker", nodsa=rel.get("nodsa"),
                nodsa_reason=rel.get("nodsa_reason"), scope=entry.get("scope"), published=None)
        for record, affected in feeds.osv_for(ecosystem, name):
            state, fixed = osv_finding(affected, installed, record.get("_file"))
            for cve in _cves(record):
                if only_cve and cve != only_cve:
                    continue
                new = _finding(cve, src, name, version, state=state, fixed=fixed,
                               urgency=_urgency((affected.get("ecosystem_specific") or {}).get("urgency")),
                               description=record.get("summary") or record.get("details"),
                               source=f"osv:{record['id']}", published=_published(record))
                key = (cve,) + key_base
                found[key] = _merge(found.get(key), new)
    for f in found.values():
        published = f["published"] and dt.datetime.fromisoformat(f["published"])
        f["age_days"] = (now - published).days if published and f["state"] == "fixed-available" else None
    return list(found.values())


def _finding(cve, src, name, version, *, state, fixed, urgency, description, source, published, nodsa=None,
             nodsa_reason=None, scope=None):
    return {"id": cve, "package": name, "version": version, "binaries": src.get("binaries", []),
            "component": src["name"], "component_version": src["version"], "bom-ref": src.get("bom-ref"), "state": state, "urgency": urgency,
            "fixed_version": fixed, "sources": [source], "description": (description or "")[:300] or None,
            "published": published.isoformat() if published else None,
            "nodsa": nodsa, "nodsa_reason": nodsa_reason, "scope": scope}


def _merge(old, new):
    """One finding per CVE and package: a fix above the installed version wins, then the tracker."""
    if old is None:
        return new
    weight = lambda f: (f["state"] == "fixed-available", "debian-tracker" in f["sources"])  # noqa: E731
    keep, other = (new, old) if weight(new) > weight(old) else (old, new)
    merged = dict(keep, sources=sorted(set(keep["sources"]) | set(other["sources"])))
    if merged["urgency"] == UNASSIGNED:
        merged["urgency"] = other["urgency"]
    for field in ("published", "description", "nodsa", "nodsa_reason", "scope"):
        if merged[field] is None:
            merged[field] = other[field]
    return merged


# ---------------------------------------------------------------- gate


@dataclasses.dataclass
class ScanResult:
    image: dict                 # name, version, sha256 (from the SBOM's metadata.component)
    scanned_at: str
    findings: list
    counts: dict
    decision: str
    reasons: list
    warnings: list
    feeds: list
    policy: dict
    sbom: dict                  # the SBOM the scan read (CycloneDX dict)

    def summary(self):
        return {"image": self.image, "scanned_at": self.scanned_at, "decision": self.decision,
                "reasons": self.reasons, "warnings": self.warnings, "counts": self.counts, "feeds": self.feeds,
                "policy": self.policy, "findings": self.findings}


def scan(sbom_doc, feeds, policy, now=None):
    """Match, classify and decide: a ScanResult whose `decision` is "pass" or "fail" with reasons."""
    now = now or dt.datetime.now(dt.timezone.utc)
    image = image_of(sbom_doc)
    sources = sources_of(sbom_doc)
    reasons, warnings = [], []
    if not sources:
        reasons.append("the SBOM lists no source package: nothing was scanned")
    if not feeds.records:
        reasons.append("no vulnerability feed was given")
    kinds = {r["kind"] for r in feeds.records}
    if "debian-tracker" in kinds and not any(image["release"] in e.get("releases", {})
                                             for issues in feeds.tracker.values() for e in issues.values()):
        reasons.append(f"the Debian tracker feed has no entry for release {image['release']}")
    if "osv" in kinds and not any(eco == image["ecosystem"] for eco, _ in feeds.osv):
        reasons.append(f"the OSV feed has no record for ecosystem {image['ecosystem']}")
    findings = match(sources, feeds, release=image["release"], ecosystem=image["ecosystem"], now=now)
    used = set()
    for f in sorted(findings, key=lambda f: (f["id"], f["package"])):
        f["gate"], f["violations"], f["acceptance"] = "pass", _violations(f, policy), None
        if not f["violations"]:
            continue
        acc = next((a for a in policy.acceptances if a.covers(f["id"], image["name"] or "")), None)
        if acc is None:
            f["gate"] = "fail"
            reasons.append(f"{f['id']} in {f['package']} {f['version']}: " + "; ".join(f["violations"]))
            continue
        used.add(acc.id)
        f["acceptance"] = acc.summary()
        f["gate"] = "fail" if acc.expired(now) else "accepted"
    for acc in policy.acceptances:
        if acc.expired(now):
            hit = sorted({f["id"] for f in findings if f["acceptance"] and f["acceptance"]["id"] == acc.id})
            reasons.append(f"acceptance {acc.id} of {', '.join(hit or acc.cves)} (owner {acc.owner}) expired "
                           f"on {acc.expires} ({acc.file}:{acc.line})")
        elif acc.id not in used:
            warnings.append(f"acceptance {acc.id} ({', '.join(acc.cves)}, owner {acc.owner}) is stale: "
                            f"it covers no finding that fails the policy ({acc.file}:{acc.line})")
    findings.sort(key=_row_order)
    counts = {"states": {s: sum(1 for f in findings if f["state"] == s) for s in STATES},
              "urgencies": {}, "gate": {g: sum(1 for f in findings if f["gate"] == g) for g in ("fail", "accepted")},
              "source_packages": len(sources)}
    for f in findings:
        if f["state"] != "not-affected":
            counts["urgencies"][f["urgency"]] = counts["urgencies"].get(f["urgency"], 0) + 1
    return ScanResult(image=image, scanned_at=now.isoformat(timespec="seconds"), findings=findings, counts=counts,
                      decision="fail" if reasons else "pass", reasons=reasons, warnings=warnings,
                      feeds=[{k: r[k] for k in ("kind", "location", "sha256", "size", "fetched_at")}
                             for r in feeds.records],
                      policy={"path": policy.path, "fixable_at_or_above": policy.fixable_at_or_above,
                              "open_at_or_above": policy.open_at_or_above,
                              "unassigned_urgency": policy.unassigned_urgency, "max_age_days": policy.max_age_days,
                              "acceptances": [a.summary() for a in policy.acceptances]},
                      sbom=sbom_doc)


def _violations(f, policy):
    out = []
    if f["state"] == "fixed-available":
        if policy.fixable_at_or_above and policy.rank(f["urgency"]) >= policy.rank(policy.fixable_at_or_above):
            out.append(f"fixed in {f['fixed_version']}, urgency {f['urgency']} is at or above "
                       f"{policy.fixable_at_or_above}")
        if policy.max_age_days is not None and f["age_days"] is not None and f["age_days"] > policy.max_age_days:
            out.append(f"a fix ({f['fixed_version']}) was published {f['age_days']} days ago, more than "
                       f"{policy.max_age_days}")
    elif f["state"] == "open" and policy.open_at_or_above and \
            policy.rank(f["urgency"]) >= policy.rank(policy.open_at_or_above):
        out.append(f"open with urgency {f['urgency']} at or above {policy.open_at_or_above}")
    return out


def _row_order(f):
    gate = {"fail": 0, "accepted": 1}.get(f.get("gate"), 2)
    rank = URGENCIES.index(f["urgency"]) if f["urgency"] in URGENCIES else len(URGENCIES)
    return gate, STATES.index(f["state"]), -rank, f["id"], f["package"]


def rows(result):
    """Findings for the report's table: every state but not-affected, failures first."""
    return [{"id": f["id"], "package": f["package"], "version": f["version"], "binaries": ", ".join(f["binaries"]),
             "state": f["state"], "urgency": f["urgency"], "fixed_version": f["fixed_version"] or "",
             "age_days": f["age_days"], "gate": f["gate"], "sources": ", ".join(f["sources"]),
             "owner": (f["acceptance"] or {}).get("owner"), "expires": (f["acceptance"] or {}).get("expires"),
             "url": _advisory_url(f["id"])}
            for f in result.findings if f["state"] != "not-affected"]


# ---------------------------------------------------------------- output

def _advisory_url(vuln_id):
    if vuln_id.startswith("CVE-"):
        return f"https://security-tracker.debian.org/tracker/{vuln_id}"
    return f"https://osv.dev/vulnerability/{urllib.parse.quote(vuln_id)}"


_SEVERITY = {"unimportant": VulnerabilitySeverity.INFO, "low": VulnerabilitySeverity.LOW,
             "medium": VulnerabilitySeverity.MEDIUM, "high": VulnerabilitySeverity.HIGH}


def _analysis(f):
    accepted = f["acceptance"]
    detail = {"fixed-available": f"fixed in {f['fixed_version']}",
              "will-not-fix": f"Debian: {f['nodsa'] or 'end-of-life'}" + (
                  f" ({f['nodsa_reason']})" if f["nodsa_reason"] else ""),
              "unimportant": "Debian urgency: unimportant",
              "not-affected": {"0": "never affected in this release", None: "resolved, no fixed version given"}.get(
                  f["fixed_version"], f"fixed in {f['fixed_version']}, installed {f['version']}")}.get(f["state"],
                                                                                                    f["state"])
    if accepted:
        detail += f"; accepted by {accepted['id']} (owner {accepted['owner']}, expires {accepted['expires']}): " \
                  f"{accepted['why']}"
    state, responses, justification = {
        "fixed-available": (ImpactAnalysisState.EXPLOITABLE, [ImpactAnalysisResponse.UPDATE], None),
        "open": (ImpactAnalysisState.EXPLOITABLE, [], None),
        "undetermined": (ImpactAnalysisState.IN_TRIAGE, [], None),
        "will-not-fix": (ImpactAnalysisState.EXPLOITABLE, [ImpactAnalysisResponse.WILL_NOT_FIX], None),
        "unimportant": (ImpactAnalysisState.EXPLOITABLE, [ImpactAnalysisResponse.WILL_NOT_FIX], None),
        "not-affected": ((ImpactAnalysisState.NOT_AFFECTED, [], ImpactAnalysisJustification.CODE_NOT_PRESENT)
                         if f["fixed_version"] == "0" else (ImpactAnalysisState.RESOLVED, [], None)),
    }[f["state"]]
    return VulnerabilityAnalysis(state=state, responses=responses, justification=justification, detail=detail)


def vex_document(result):
    """The scanned SBOM, as its next version, with one CycloneDX vulnerability per finding (on source components)."""
    bom = Bom.from_json(result.sbom)
    bom.version = result.sbom.get("version", 1) + 1         # CycloneDX: a modified BOM keeps its serial, bumps version
    bom.metadata.timestamp = dt.datetime.fromisoformat(result.scanned_at)
    for f in result.findings:
        tracker = f["id"].startswith("CVE-")
        status = ImpactAnalysisAffectedStatus.UNAFFECTED if f["state"] == "not-affected" else \
            ImpactAnalysisAffectedStatus.AFFECTED
        bom.vulnerabilities.add(Vulnerability(
            bom_ref=f"{f['id']}:{f['bom-ref']}", id=f["id"], description=f["description"],
            source=VulnerabilitySource(name="Debian Security Tracker" if tracker else "OSV",
                                       url=_advisory_url(f["id"])),
            ratings=[VulnerabilityRating(severity=_SEVERITY.get(f["urgency"], VulnerabilitySeverity.UNKNOWN),
                                         method=VulnerabilityScoreSource.OTHER, justification=f"Debian urgency: "
                                         f"{f['urgency']}")],
            recommendation=f"upgrade {f['package']} to {f['fixed_version']}" if f["state"] == "fixed-available"
            else None,
            analysis=_analysis(f),
            affects=[BomTarget(ref=f["bom-ref"], versions=[BomTargetVersionRange(version=f["component_version"],
                                                                                 status=status)])],
            properties=[Property(name="golden:state", value=f["state"]), Property(name="golden:gate", value=f["gate"]),
                        Property(name="golden:feeds", value=", ".join(f["sources"]))]))
    return json.loads(JsonV1Dot6(bom).output_as_string())


def write_scan(run, result):
    """Write runs/<v>/scan.json and runs/<v>/scan.cdx.json; returns their paths."""
    write_json_atomic(run.path(SCAN_FILE), result.summary())
    write_json_atomic(run.path(VEX_FILE), vex_document(result))
    return run.path(SCAN_FILE), run.path(VEX_FILE)


def affected_images(store, feeds, cve_id):
    """Every published image and whether it ships a package affected by `cve_id`, from each image's
    stored package index (its SBOM's source packages): only the packages the feeds name for the CVE
    are matched, so a thousand images cost a thousand small reads."""
    named = {pkg for pkg, issues in feeds.tracker.items() if cve_id in issues}
    named |= {pkg for (_, pkg), entries in feeds.osv.items() if any(cve_id in _cves(rec) for rec, _ in entries)}
    if not named:
        raise GoldenError(f"{cve_id} is in none of the loaded feeds", field="cve")
    now = dt.datetime.now(dt.timezone.utc)
    images = store.index()["images"]      # read once: a thousand versions, one index
    out = []
    for version in sorted(images, key=ImageVersion.sort_key):
        entry = images[version]
        directory = os.path.join(store.root, "images", version)
        row = {"version": version, "sha256": entry.get("sha256"), "sbom": os.path.join(directory, SBOM_FILE),
               "packages": []}
        index = load_index(directory)
        if index is None:
            out.append(dict(row, verdict="unknown", reason="no SBOM stored with this image"))
            continue
        image = index["image"]
        sources = [s for s in index["sources"] if s["tracked"][0] in named]
        hits = match(sources, feeds, release=image["release"], ecosystem=image["ecosystem"], now=now,
                     only_cve=cve_id)
        row["packages"] = [{k: f[k] for k in ("package", "version", "binaries", "state", "urgency", "fixed_version")}
                           for f in hits]
        affected = [f for f in hits if f["state"] != "not-affected"]
        out.append(dict(row, verdict="affected" if affected else "not-affected"))
    return out
