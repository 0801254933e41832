"""`golden run`: every stage for one candidate, in order, each timed in timings.json.

base -> build (Packer) -> hygiene (the artifact, read-only) -> boot -> test (pytest) -> reboot -> sbom
-> scan -> gate -> sign -> publish (only on a pass) -> report.
A stage that fails stops the ones after it, but the gate still decides (it fails closed on
the missing evidence) and the report is still written, so the run directory explains the failure.
"""

import contextlib

import os

from . import report, supply
from .base import ensure_base, preflight as base_preflight
from .boot import booted
from .build import build
from .checks.baseline import Baseline
from .errors import GoldenError
from .gate import decide
from .rundir import Run
from .suite import hygiene, load_exceptions, reboot_check, run_suite
from .util import read_json, require_tool, write_json_atomic

TOOLS = (("packer", "packer"), ("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"),
         ("xorriso", "xorriso"))


def preflight(spec, cache_dir, exception_paths=None):
    """Everything that can be known wrong before a run directory exists: tools, the base image,
    exception files. Returns the exceptions in the image's scope, keyed by the controls they cover."""
    for tool, package in TOOLS:
        require_tool(tool, package)
    _authorized_time_servers(spec, Baseline.load())
    _, relevant = load_exceptions(spec, exception_paths)
    base_preflight(spec.base, cache_dir)
    return skipped_controls(relevant, spec)


def _authorized_time_servers(spec, baseline):
    """A spec's time servers must be among the baseline's authorized ones (CIS 2.3.3.1), or the
    image would fail its gate after a full build: say so now."""
    authorized = baseline.values("2.3.3.1").get("params", {}).get("servers")
    if not authorized or not baseline.applies("2.3.3.1", spec.role, spec.level):
        return
    authorized = authorized if isinstance(authorized, list) else str(authorized).split()
    stray = [s for s in spec.time_servers if s not in authorized]
    if stray:
        raise GoldenError(f"time server(s) {', '.join(stray)} are not authorized by the baseline "
                          f"(CIS 2.3.3.1: {', '.join(authorized)})", file=spec.path, field="time_servers")


def skipped_controls(relevant, spec):
    """Controls the hardening leaves alone: {cis id: exception id}."""
    from .checks.catalogue import Catalogue
    from .checks.exceptions import covering
    out = {}
    for rec in Catalogue.load():
        exc = covering(relevant, rec.id, spec.role, spec.name)
        if exc:
            out[rec.id] = exc.id
    return out


def run_pipeline(spec, *, runs_root, store, cache_dir, log, workers=2, publish=True, exception_paths=None,
                 emergency=None):
    """Returns (run, gate record, store entry or None).

    emergency: a CVE id. The run rebuilds from the base with every update (as always), and its scan
    must show the CVE gone from the candidate, or the run fails; emergency.json records the time
    from start to published (the MTTR figure).
    """
    import datetime as dt
    started = dt.datetime.now(dt.timezone.utc)
    baseline = Baseline.load()
    skipped = preflight(spec, cache_dir, exception_paths)
    run = Run.create(runs_root, spec, taken=store.versions())
    log(f"run {run.version} in {run.dir}" + (f" (emergency rebuild for {emergency})" if emergency else ""))
    try:
        with run.stage("base", log):
            base = ensure_base(spec.base, cache_dir, log)
            run.update_meta(base={"path": base.path, "sha256": base.sha256, "origin": base.origin})
        with run.stage("build", log):
            build(spec, run, base, baseline, cache_dir=cache_dir, log=log, skipped=skipped)
        with run.stage("hygiene", log) as outcome:
            if hygiene(run, spec, log)["exit_code"] != 0:
                outcome["status"] = "failed"
        with contextlib.ExitStack() as stack:
            with run.stage("boot", log):
                cand = stack.enter_context(booted(run.artifact, run.path("boot"), cache_dir=cache_dir, log=log))
            with run.stage("test", log) as outcome:
                result = run_suite(run, cand.hostspec, spec, log, workers, exception_paths=exception_paths)
                if result["exit_code"] != 0:
                    outcome["status"] = "failed"
            with run.stage("reboot", log) as outcome:
                if not reboot_check(run, cand, log):
                    outcome["status"] = "failed"
            stack.close()     # stop the VM and verify the artifact digest before the gate reads it
        with run.stage("sbom", log):
            supply.sbom_stage(run, log)
        with run.stage("scan", log) as outcome:
            result = supply.scan_stage(run, spec, cache_dir, log)
            if result.decision != "pass":
                outcome["status"] = "failed"
    except GoldenError as exc:
        log(f"error: {exc}")
    with run.stage("gate", log) as outcome:
        record = decide(run)
        if emergency:
            record = _emergency_verdict(run, emergency, record)
        if record["decision"] != "pass":
            outcome["status"] = "failed"
            for reason in record["reasons"]:
                log(f"gate: {reason}")
    entry = None
    if record["decision"] == "pass" and publish:
        try:
            with run.stage("sign", log):
                _, public = supply.sign_stage(run, cache_dir, log)
            with run.stage("publish", log):
                entry = store.publish(run, log, public_key=public)
        except GoldenError as exc:
            log(f"error: {exc}")
    if emergency:
        finished = dt.datetime.now(dt.timezone.utc)
        write_json_atomic(run.path("emergency.json"), {
            "cve": emergency, "started_at": started.isoformat(timespec="seconds"),
            "finished_at": finished.isoformat(timespec="seconds"), "published": entry is not None,
            "mttr_seconds": round((finished - started).total_seconds(), 1) if entry else None,
            "gone": record.get("emergency", {}).get("gone")})
    log(f"report: {report.render(run)}")
    return run, record, entry


def _emergency_verdict(run, cve, record):
    """The candidate's scan must show the CVE gone: known to the feeds, and not affecting any package."""
    scan = read_json(run.path("scan.json"), "scan record") if os.path.exists(run.path("scan.json")) else None
    findings = [f for f in (scan or {}).get("findings", []) if f.get("id") == cve]
    present = [f for f in findings if f.get("state") != "not-affected"]
    gone = scan is not None and bool(findings) and not present
    record["emergency"] = {"cve": cve, "gone": gone, "findings": findings}
    if not gone:
        record["decision"] = "fail"
        why = ("the scan did not run" if scan is None else
               f"the feeds do not know {cve}: its absence cannot be proven" if not findings else
               f"{cve} is still present: " + ", ".join(f"{f['package']} {f['version']} ({f['state']})" for f in present))
        record["reasons"].append(f"emergency: {why}")
    write_json_atomic(run.path("gate.json"), record)
    return record
