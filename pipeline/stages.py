"""`golden run`: every stage for one candidate, in order, each timed in timings.json.

base -> build (Packer) -> boot -> test (pytest) -> gate -> report -> publish (only on a pass).
A stage that fails stops the ones after it, but the gate still decides (it fails closed on
the missing evidence) and the report is still written, so the run directory explains the failure.
"""

import contextlib

from . import report
from .base import ensure_base, preflight as base_preflight
from .boot import booted
from .build import build
from .checks.baseline import Baseline
from .errors import GoldenError
from .gate import decide
from .rundir import Run
from .suite import load_exceptions, run_suite
from .util import require_tool

TOOLS = (("packer", "packer"), ("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"),
         ("xorriso", "xorriso"))


def preflight(spec, cache_dir, exception_paths=None):
    """Everything that can be known wrong before a run directory exists: tools, the base image,
    exception files. Returns the exceptions in the image's scope, keyed by the controls they cover."""
    for tool, package in TOOLS:
        require_tool(tool, package)
    _, relevant = load_exceptions(spec, exception_paths)
    base_preflight(spec.base, cache_dir)
    return skipped_controls(relevant, spec)


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


def run_pipeline(spec, *, runs_root, store, cache_dir, log, workers=2, publish=True, exception_paths=None):
    """Returns (run, gate record, store entry or None)."""
    baseline = Baseline.load()
    skipped = preflight(spec, cache_dir, exception_paths)
    run = Run.create(runs_root, spec, taken=store.versions())
    log(f"run {run.version} in {run.dir}")
    try:
        with run.stage("base", log):
            base = ensure_base(spec.base, cache_dir, log)
            run.update_meta(base={"path": base.path, "sha256": base.sha256, "origin": base.origin})
        with run.stage("build", log):
            build(spec, run, base, baseline, cache_dir=cache_dir, log=log, skipped=skipped)
        with contextlib.ExitStack() as stack:
            with run.stage("boot", log):
                cand = stack.enter_context(booted(run.artifact, run.path("boot"), cache_dir=cache_dir, log=log))
            with run.stage("test", log) as outcome:
                result = run_suite(run, cand.hostspec, spec, log, workers, exception_paths=exception_paths)
                if result["exit_code"] != 0:
                    outcome["status"] = "failed"
            stack.close()     # stop the VM and verify the artifact digest before the gate reads it
    except GoldenError as exc:
        log(f"error: {exc}")
    with run.stage("gate", log) as outcome:
        record = decide(run)
        if record["decision"] != "pass":
            outcome["status"] = "failed"
            for reason in record["reasons"]:
                log(f"gate: {reason}")
    entry = None
    if record["decision"] == "pass" and publish:
        with run.stage("publish", log):
            entry = store.publish(run, log, extra_files=[run.path("artifact.json"), run.path("timings.json")])
    log(f"report: {report.render(run)}")
    return run, record, entry
