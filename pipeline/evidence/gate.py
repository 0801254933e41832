"""`golden gate`: decide from the JUnit whether a candidate may be published. Fail closed.

    record = decide(run)          # writes runs/<version>/gate.json, bound to the artifact's sha256
    record["decision"]            # "pass" or "fail", with "reasons"

Any of these fails the gate: no JUnit, a malformed JUnit, zero tests run, a collection or other
error, a failed test, pytest not finishing normally, a boot that never reached SSH, an artifact
whose sha256 differs from the one that was booted and tested, a missing or failed vulnerability
scan, or an exception (waiver) that has expired.
"""

import datetime as dt
import os

from pipeline.errors import GoldenError
from pipeline.evidence.junit import JUnitError, parse_junit
from pipeline.util import read_json, sha256_file, write_json_atomic

# Every run must bring all three; a missing one fails the gate.
REQUIRED_JUNIT = (("junit-hygiene.xml", "the artifact's hygiene, before boot"),
                  ("junit.xml", "the CIS and acceptance suites on the booted candidate"),
                  ("junit-reboot.xml", "the candidate back after a reboot"))


def decide(run, *, now=None):
    """Read the run's evidence, decide, write gate.json; returns the record.

    `now` (UTC) is the clock exceptions expire against: `golden gate --as-of DATE` sets it.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    as_of = now.date()
    reasons, cases, junit_files = [], [], []
    artifact = read_json(run.path("artifact.json"), "artifact record") if os.path.exists(
        run.path("artifact.json")) else None
    digest = None
    if artifact is None:
        reasons.append("no artifact record (artifact.json): the build did not finish")
    elif not os.path.isfile(run.artifact):
        reasons.append(f"the artifact {run.artifact} is missing")
    else:
        digest = sha256_file(run.artifact)
        if digest != artifact["sha256"]:
            reasons.append(f"artifact sha256 {digest} differs from the built one {artifact['sha256']}")

    boot_path = run.path("boot", "boot.json")
    boot = read_json(boot_path, "boot record") if os.path.exists(boot_path) else None
    if boot is None:
        reasons.append("the candidate was never booted (no boot/boot.json)")
    else:
        if "seconds_to_ssh" not in boot:
            reasons.append("the candidate never answered SSH")
        if boot.get("sha256_after") is None:
            reasons.append("the artifact digest was not verified after testing")
        elif digest and not (boot.get("sha256_before") == boot.get("sha256_after") == digest):
            reasons.append("the tested image is not the artifact: sha256 before/after the boot "
                           f"{boot.get('sha256_before')}/{boot.get('sha256_after')}, artifact {digest}")

    for name, what in (("hygiene", "the hygiene inspection of the artifact"), ("test", "the suite")):
        path = run.path(f"{name}.json")
        test = read_json(path, f"{name} record") if os.path.exists(path) else None
        if test is None:
            reasons.append(f"{what} did not run (no {name}.json)")
        elif test.get("exit_code") not in (0, 1):
            reasons.append(f"pytest ({what}) did not finish normally (exit code {test.get('exit_code')}: "
                           f"{test.get('exit_meaning', 'see its log')})")

    scan = read_json(run.path("scan.json"), "scan record") if os.path.exists(run.path("scan.json")) else None
    if scan is None:
        reasons.append("the candidate was not scanned for vulnerabilities (no scan.json)")
    elif scan.get("decision") != "pass":
        reasons += [f"vulnerability scan: {r}" for r in scan.get("reasons") or ["failed"]]

    main_cases = None
    for name, what in REQUIRED_JUNIT:
        path = run.path(name)
        if not os.path.exists(path):
            reasons.append(f"no JUnit file {name} ({what})")
            continue
        try:
            found = parse_junit(path)
        except JUnitError as exc:
            reasons.append(str(exc))
            continue
        cases += found
        main_cases = found if name == "junit.xml" else main_cases
        junit_files.append({"path": name, "sha256": sha256_file(path)})

    waivers = {}
    if os.path.exists(run.path("exceptions.json")):
        snapshot = read_json(run.path("exceptions.json"), "exceptions snapshot")
        waivers = {e["id"]: e for e in snapshot.get("exceptions", [])}
        for e in waivers.values():
            if dt.date.fromisoformat(e["expires"]) < as_of:
                reasons.append(f"exception {e['id']} (owner {e['owner']}) for CIS {', '.join(e['controls'])} "
                               f"expired on {e['expires']}")
    waived = []
    for c in cases:
        if c["status"] != "waived":
            continue
        p = c["properties"]
        exc = waivers.get(p.get("waiver_id"))
        if exc is None or dt.date.fromisoformat(exc["expires"]) < as_of:
            c["status"] = "failed"        # a waiver that no longer holds is a failure again
            c["message"] = f"waiver {p.get('waiver_id')} no longer holds on {as_of}: {c['message']}"
            continue
        waived.append({"name": c["name"], "cis_id": p.get("cis_id"), "title": p.get("title"),
                       "waiver": {k: exc.get(k) for k in ("id", "why", "owner", "approved_by", "ticket", "expires")},
                       "found": c["message"]})

    counts = {s: sum(1 for c in cases if c["status"] == s) for s in ("passed", "failed", "error", "skipped", "waived")}
    counts["total"] = len(cases)
    if main_cases is not None and not [c for c in main_cases if c["status"] != "skipped"]:
        reasons.append("zero tests ran against the candidate")
    failures = [{"name": f"{c['classname']}::{c['name']}".strip(":"), "status": c["status"],
                 "cis_id": c["properties"].get("cis_id"), "title": c["properties"].get("title"),
                 "message": c["message"]} for c in cases if c["status"] in ("failed", "error")]
    if counts["error"]:
        reasons.append(f"{counts['error']} test(s) errored (collection or setup errors count)")
    if counts["failed"]:
        ids = sorted({f["cis_id"] for f in failures if f["cis_id"]})
        reasons.append(f"{counts['failed']} test(s) failed" + (f" (CIS {', '.join(ids)})" if ids else ""))

    record = {
        "version": run.version,
        "artifact": {"file": os.path.basename(run.artifact), "sha256": digest},
        "decision": "fail" if reasons else "pass",
        "reasons": reasons,
        "counts": counts,
        "failures": failures,
        "waived": waived,
        "junit": junit_files,
        "scan": {k: scan.get(k) for k in ("decision", "counts")} if scan else None,
        "decided_at": now.isoformat(timespec="seconds"),
        "as_of": as_of.isoformat(),
    }
    write_json_atomic(run.path("gate.json"), record)
    return record


def require_pass(gate_path, artifact_path):
    """The gate record for an artifact, if and only if it passed and its digest matches the artifact."""
    record = read_json(gate_path, "gate record")
    if record.get("decision") != "pass":
        raise GoldenError("the gate did not pass: " + "; ".join(record.get("reasons") or ["no decision"]),
                          file=gate_path)
    digest = sha256_file(artifact_path)
    if record.get("artifact", {}).get("sha256") != digest:
        raise GoldenError(f"the gate record is for sha256 {record.get('artifact', {}).get('sha256')}, "
                          f"the artifact is {digest}", file=gate_path, field="artifact.sha256")
    return record, digest
