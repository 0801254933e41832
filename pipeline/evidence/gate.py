"""`golden gate`: decide from the JUnit whether a candidate may be published. Fail closed.

    record = decide(run)          # writes runs/<version>/gate.json, bound to the artifact's sha256
    record["decision"]            # "pass" or "fail", with "reasons"

Any of these fails the gate: no JUnit, a malformed JUnit, zero tests run, a collection or other
error, a failed test, pytest not finishing normally, a boot that never reached SSH, an artifact
whose sha256 differs from the one that was booted and tested, a missing or failed vulnerability
scan, or an exception (waiver) that has expired. And the JUnit must be what was expected: every
evidence file from the run's current attempt, each JUnit holding exactly the test cases its session
collected (no case missing, extra, nameless or twice; declared counts that match the cases), and
every checked control of the run's role and level with exactly one verdict, and each pytest session
run with the driver's own arguments and no others (an extra `-k` or `--deselect` given to
`golden test -- ARGS` shrinks what is collected and what is reported together).
"""

import collections
import datetime as dt
import os
import shlex

from pipeline.checks.coverage import coverage
from pipeline.errors import GoldenError
from pipeline.evidence.attempt import EXPECTED
from pipeline.evidence.junit import JUnitError, junit_name, read_junit
from pipeline.evidence.suite import REBOOT_CASE, unrequested_arguments
from pipeline.util import read_json, sha256_file, write_json_atomic

# Every run must bring all three; a missing one fails the gate.
REQUIRED_JUNIT = (("junit-hygiene.xml", "the artifact's hygiene, before boot"),
                  ("junit.xml", "the CIS and acceptance suites on the booted candidate"),
                  ("junit-reboot.xml", "the candidate back after a reboot"))
# The attempt's records besides the JUnit; each must carry the attempt id. (record, what, whether
# its absence is a reason of its own here: decide() reports a missing boot, hygiene or test record.)
ATTEMPT_RECORDS = (("boot/boot.json", "the boot", False), ("hygiene.json", "the hygiene inspection", False),
                   ("test.json", "the suite", False), ("reboot.json", "the reboot", True),
                   (EXPECTED["junit-hygiene.xml"], "the hygiene tests collected", True),
                   (EXPECTED["junit.xml"], "the suite's tests collected", True),
                   # absent, no waiver holds (decide() fails every waived case); of another attempt, none may
                   ("exceptions.json", "the exceptions the suite ran with", False))
COUNTED = ("passed", "failed", "error", "skipped", "waived", "not-applicable")


def _read(run, name, what):
    path = run.path(name)
    return read_json(path, what) if os.path.exists(path) else None


def _attempt_reasons(run, attempt):
    """Every record of the attempt present and carrying its id: evidence of one attempt only."""
    if not attempt:
        return ["no test attempt is recorded in run.json: the evidence cannot be tied to one attempt"]
    reasons = []
    for name, what, required in ATTEMPT_RECORDS:
        record = _read(run, name, f"{what} record")
        if record is None:
            reasons += [f"no {name} ({what}) from attempt {attempt}"] if required else []
        elif record.get("attempt") != attempt:
            reasons.append(f"{name} ({what}) is from attempt {record.get('attempt')}, not the current {attempt}")
    return reasons


def _command_reasons(run, name, what, record):
    """The session's recorded command against the driver's own (suite.unrequested_arguments): any
    argument the driver does not give may have chosen the tests, so the session is not evidence.

    The acceptance and hygiene tests have no catalogue to be checked against as the CIS controls
    have; the driver's fixed argument list is what says which of them a session must run. The
    driver always records it: a record without one was not written by the driver.
    """
    command = record.get("command")
    if not command:
        return [f"{name}.json ({what}): it records no command (the driver always does): nothing says which "
                "tests the session was asked to run"]
    if not isinstance(command, list) or not all(isinstance(t, str) for t in command):
        return [f"{name}.json ({what}): its command is not a list of arguments"]
    extra, missing = unrequested_arguments(run, name, command)
    reasons = []
    if extra:
        reasons.append(f"{name}.json ({what}): pytest ran with argument(s) the driver does not give: "
                       f"{shlex.join(extra)}; a session that chose its own tests is not evidence "
                       "(run golden test without extra pytest arguments)")
    if missing:
        reasons.append(f"{name}.json ({what}): pytest ran without the driver's argument(s) {shlex.join(missing)}")
    return reasons


def _expected_cases(run, name):
    """The (classname, name) pairs a JUnit file must hold, from what its session collected."""
    if name == "junit-reboot.xml":
        return [REBOOT_CASE]
    expected = _read(run, EXPECTED[name], "collected tests")
    return [junit_name(nodeid) for nodeid in (expected or {}).get("tests", [])] if expected else None


def _case_reasons(name, cases, expected):
    """Missing, extra and duplicate cases against the expected set."""
    if expected is None:
        return []                  # the missing expected-tests record is already a reason
    if not expected:
        return [f"{name}: no tests were collected for it"]
    found = collections.Counter((c["classname"], c["name"]) for c in cases if not c["name"].startswith("<"))
    want = collections.Counter(expected)
    reasons = []
    for label, keys in (("missing", [k for k in want if k not in found]),
                        ("not collected (extra)", [k for k in found if k not in want]),
                        ("reported more than once", [k for k in found if k in want and found[k] > want[k]])):
        if keys:
            reasons.append(f"{name}: {len(keys)} test case(s) {label}: " + _some(keys))
    return reasons


def _some(keys, limit=5):
    names = [f"{c}::{n}".strip(":") for c, n in list(keys)[:limit]]
    return ", ".join(names) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _catalogue_reasons(run, cases):
    """Derived from the catalogue, not from the session: every checked control of the run's role and
    level has exactly one verdict in junit.xml, and no control outside them has one."""
    meta = run.meta
    if not meta.get("role"):
        return ["run.json names no role: the controls to expect are unknown"]
    rows = coverage(meta["role"], meta.get("level"))
    applicable = {r["id"] for r in rows if r["status"] in ("checked", "manual", "not yet")}
    verdicts = collections.Counter(c["properties"]["cis_id"] for c in cases if c["properties"].get("cis_id"))
    reasons = []
    checked = [r["id"] for r in rows if r["status"] == "checked"]
    missing = [i for i in checked if verdicts[i] == 0]
    if missing:
        reasons.append(f"junit.xml: {len(missing)} checked control(s) of role {meta['role']} level "
                       f"{meta.get('level')} have no verdict: CIS " + _ids(missing))
    twice = sorted(i for i, n in verdicts.items() if n > 1)
    if twice:
        reasons.append("junit.xml: control(s) with more than one verdict: CIS " + _ids(twice))
    foreign = sorted(set(verdicts) - applicable)
    if foreign:
        reasons.append(f"junit.xml: verdicts on control(s) outside role {meta['role']} level "
                       f"{meta.get('level')}: CIS " + _ids(foreign))
    return reasons


def _ids(ids, limit=10):
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def decide(run, *, now=None):
    """Read the run's evidence, decide, write gate.json; returns the record.

    `now` (UTC) is the clock exceptions expire against: `golden gate --as-of DATE` sets it.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    as_of = now.date()
    reasons, cases, junit_files = [], [], []
    attempt = run.attempt
    reasons += _attempt_reasons(run, attempt)
    artifact = _read(run, "artifact.json", "artifact record")
    digest = None
    if artifact is None:
        reasons.append("no artifact record (artifact.json): the build did not finish")
    elif not os.path.isfile(run.artifact):
        reasons.append(f"the artifact {run.artifact} is missing")
    else:
        digest = sha256_file(run.artifact)
        if digest != artifact["sha256"]:
            reasons.append(f"artifact sha256 {digest} differs from the built one {artifact['sha256']}")

    boot = _read(run, "boot/boot.json", "boot record")
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
        test = _read(run, f"{name}.json", f"{name} record")
        if test is None:
            reasons.append(f"{what} did not run (no {name}.json)")
        else:
            if test.get("status") == "interrupted" or test.get("exit_code") not in (0, 1):
                reasons.append(f"pytest ({what}) did not finish normally (exit code {test.get('exit_code')}: "
                               f"{test.get('cause') or test.get('exit_meaning', 'see its log')})")
            reasons += _command_reasons(run, name, what, test)

    scan = _read(run, "scan.json", "scan record")
    if scan is None:
        reasons.append("the candidate was not scanned for vulnerabilities (no scan.json)")
    elif scan.get("decision") != "pass":
        reasons += [f"vulnerability scan: {r}" for r in scan.get("reasons") or ["failed"]]

    for name, what in REQUIRED_JUNIT:
        path = run.path(name)
        if not os.path.exists(path):
            reasons.append(f"no JUnit file {name} ({what})")
            continue
        try:
            junit = read_junit(path)
        except JUnitError as exc:
            reasons.append(str(exc))
            continue
        if attempt and junit.properties.get("attempt_id") != attempt:
            reasons.append(f"{name} is from attempt {junit.properties.get('attempt_id')}, not the current {attempt}")
        reasons += junit.problems
        reasons += _case_reasons(name, junit.cases, _expected_cases(run, name))
        if not [c for c in junit.cases if c["status"] != "skipped"]:
            reasons.append(f"zero tests ran: {name} ({what}) holds no test that ran")
        if name == "junit.xml":
            reasons += _catalogue_reasons(run, junit.cases)
        cases += junit.cases
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

    counts = {s.replace("-", "_"): sum(1 for c in cases if c["status"] == s) for s in COUNTED}
    counts["total"] = len(cases)
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
        "attempt": attempt,
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
