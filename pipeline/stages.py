"""The stages of one candidate's run, as one table. `golden run` runs all of them; `golden build` and
`golden test` run slices of the same table. Every stage has one call shape, `stage(ctx)`: it reads
and fills the run context, returns False when the candidate failed it (the stage ran, the evidence
says no), and raises GoldenError when it could not run (which stops the stages after it).

    ctx = Context(spec, store, cache_dir, log)
    run_pipeline(ctx)                   # base ... publish, then the report
    run_stages(ctx, TEST)               # hygiene, boot, test, reboot on ctx.run

| stage | evidence it writes into runs/<version>/ |
| --- | --- |
| base | run.json's base (the cached base image and its sha256) |
| build | artifact.json, the candidate qcow2, packer.log, build-console.log |
| hygiene | junit-hygiene.xml, hygiene.json, expected-hygiene.json (a new attempt starts here) |
| boot | boot/boot.json (the VM stays up for the next stages) |
| test | junit.xml, test.json, expected-tests.json, exceptions.json, pytest.log |
| reboot | junit-reboot.xml, reboot.json (the VM stops after it; the artifact digest is checked) |
| sbom | sbom.cdx.json |
| scan | scan.json, scan.cdx.json |
| gate | gate.json |
| sign | provenance.intoto.jsonl, test-result.intoto.jsonl |
| publish | the store's index and images/<version>/ |
"""

import contextlib
import datetime as dt
import os
import shlex
from dataclasses import dataclass, field

from pipeline.checks.baseline import Baseline
from pipeline.errors import GoldenError
from pipeline.evidence import attempt, report
from pipeline.evidence.gate import decide
from pipeline.evidence.rundir import Run
from pipeline.evidence.suite import hygiene, reboot_check, run_suite
from pipeline.image.base import ensure_base
from pipeline.image.build import build
from pipeline.kpi import store_dashboard
from pipeline.preflight import preflight
from pipeline.supply import attest
from pipeline.supply.feeds import load_feeds
from pipeline.supply.sbom import SBOM_FILE, write_sbom
from pipeline.supply.scan import load_policy, scan, write_scan
from pipeline.util import read_json, write_json_atomic
from pipeline.vm.boot import booted


@dataclass
class Context:
    """What the stages of one run share."""
    spec: object                          # the ImageSpec
    store: object                         # the Store published into
    cache_dir: str
    log: object                           # a Progress
    run: Run | None = None
    workers: int = 2
    exception_paths: list | None = None
    extra_args: tuple = ()                # extra pytest arguments (golden test -- ...)
    emergency: str | None = None          # a CVE id the candidate must prove gone
    skipped: dict = field(default_factory=dict)       # controls the hardening leaves alone (exceptions)
    vm: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    cand: object = None                   # the booted candidate, between boot and reboot
    results: dict = field(default_factory=dict)       # what stages hand on: gate record, store entry, ...

    @property
    def baseline(self):
        return Baseline.load()


def _base(ctx):
    base = ensure_base(ctx.spec.base, ctx.cache_dir, ctx.log, store=ctx.store)
    ctx.run.update_meta(base={"path": base.path, "sha256": base.sha256, "origin": base.origin,
                              **{k: base.info[k] for k in ("version", "channel") if k in base.info}})
    ctx.results["base"] = base


def _build(ctx):
    ctx.results["artifact"] = build(ctx.spec, ctx.run, ctx.results["base"], ctx.baseline, cache_dir=ctx.cache_dir,
                                    log=ctx.log, skipped=ctx.skipped)


def _hygiene(ctx):
    return hygiene(ctx.run, ctx.spec, ctx.log)["exit_code"] == 0


def _boot(ctx):
    ctx.cand = ctx.vm.enter_context(booted(ctx.run.artifact, ctx.run.path("boot"), cache_dir=ctx.cache_dir,
                                           log=ctx.log, attempt=ctx.run.attempt))


def _test(ctx):
    vm = ctx.cand.vm
    if ctx.extra_args:
        ctx.log(f"extra pytest arguments ({shlex.join(ctx.extra_args)}): they may choose the tests, so the "
                "gate will not accept this attempt")
    result = run_suite(ctx.run, ctx.cand.hostspec, ctx.spec, ctx.log, ctx.workers, extra_args=ctx.extra_args,
                       exception_paths=ctx.exception_paths, alive=lambda: vm.alive)
    ctx.results["test"] = result
    vm.check_alive("during the suite")
    return result["exit_code"] == 0


def _reboot(ctx):
    ctx.cand.vm.check_alive("before the reboot")
    return reboot_check(ctx.run, ctx.cand, ctx.log)


def _sbom(ctx):
    path = write_sbom(ctx.run)
    ctx.log(f"SBOM: {len(read_json(path, 'SBOM').get('components', []))} components ({SBOM_FILE})")


def _scan(ctx):
    doc = read_json(ctx.run.path(SBOM_FILE), "SBOM")
    feeds = load_feeds(ctx.spec.feeds, ctx.cache_dir)
    for r in feeds.records:
        ctx.log(f"feed {r['kind']}: {r['location']} (sha256 {r['sha256'][:12]}..., fetched {r['fetched_at']})")
    result = scan(doc, feeds, load_policy(ctx.spec.scan_policy))
    write_scan(ctx.run, result)
    counts = result.summary()["counts"]
    ctx.log(f"scan {result.decision}: " + ", ".join(f"{n} {s}" for s, n in counts["states"].items() if n))
    for reason in result.reasons[:10]:
        ctx.log(f"scan: {reason}")
    ctx.results["scan"] = result
    return result.decision == "pass"


def _gate(ctx):
    record = decide(ctx.run)
    if ctx.emergency:
        record = _emergency_verdict(ctx.run, ctx.emergency, record)
    for reason in record["reasons"]:
        ctx.log(f"gate: {reason}")
    ctx.results["gate"] = record
    return record["decision"] == "pass"


def _sign(ctx):
    key, public = attest.signing_key(ctx.cache_dir)
    paths = attest.attest(ctx.run, key)
    ctx.log(f"signed with key {attest.public_key(public).keyid}: "
            + ", ".join(os.path.basename(p) for p in paths.values()))
    ctx.results["public_key"] = public


def _publish(ctx):
    ctx.results["entry"] = ctx.store.publish(ctx.run, ctx.log, public_key=ctx.results.get("public_key"))


@dataclass(frozen=True)
class Stage:
    name: str
    run: object
    vm: bool = False        # needs the booted candidate: the VM stops after the last such stage of a slice


STAGES = (Stage("base", _base), Stage("build", _build), Stage("hygiene", _hygiene),
          Stage("boot", _boot, vm=True), Stage("test", _test, vm=True), Stage("reboot", _reboot, vm=True),
          Stage("sbom", _sbom), Stage("scan", _scan), Stage("gate", _gate), Stage("sign", _sign),
          Stage("publish", _publish))
NAMES = tuple(s.name for s in STAGES)
BUILD = ("base", "build")                                         # golden build
TEST = ("hygiene", "boot", "test", "reboot")                      # golden test
EVIDENCE = NAMES[:NAMES.index("gate")]                            # what the gate decides on
RELEASE = ("sign", "publish")                                     # only after a passing gate


def run_stages(ctx, names):
    """Run the named stages in table order, each timed in timings.json; True if the candidate passed
    every one. A GoldenError stops the slice (after the VM is stopped) and propagates."""
    chosen = [s for s in STAGES if s.name in names]
    unknown = set(names) - set(NAMES)
    if unknown:
        raise GoldenError(f"unknown stage(s) {', '.join(sorted(unknown))} (stages: {', '.join(NAMES)})")
    last_vm = max((i for i, s in enumerate(chosen) if s.vm), default=None)
    if set(names) & set(TEST):
        attempt.start(ctx.run)      # the earlier attempt's evidence is moved aside before anything is written
    passed = True
    try:
        for i, stage in enumerate(chosen):
            with ctx.run.stage(stage.name, ctx.log) as outcome:
                if stage.run(ctx) is False:
                    outcome["status"] = "failed"
                    passed = False
            if i == last_vm:
                ctx.vm.close()      # stop the VM and verify the artifact digest before later stages read it
    finally:
        ctx.cand = None
        ctx.vm.close()
    return passed


def new_run(ctx, runs_root):
    """Preflight, then allocate the run directory (the version) for ctx.spec."""
    ctx.skipped = preflight(ctx.spec, ctx.cache_dir, ctx.exception_paths, ctx.store)
    ctx.run = Run.create(runs_root, ctx.spec, taken=ctx.store.taken())
    ctx.log(f"run {ctx.run.version} in {ctx.run.dir}"
            + (f" (emergency rebuild for {ctx.emergency})" if ctx.emergency else ""))
    return ctx.run


def run_pipeline(ctx, runs_root, publish=True):
    """Every stage for a new candidate of ctx.spec; returns (run, gate record, store entry or None).

    A stage error stops the evidence stages, but the gate still decides (it fails closed on the
    missing evidence) and the report is still written, so the run directory explains the failure.
    With ctx.emergency (a CVE id) the candidate's scan must show the CVE gone, or the run fails;
    emergency.json records the time from start to published, and the store's emergency ledger the
    rebuild and the publish (pipeline.kpi.emergencies: the MTTR phases).
    """
    started = dt.datetime.now(dt.timezone.utc)
    new_run(ctx, runs_root)
    try:
        run_stages(ctx, EVIDENCE)
    except GoldenError as exc:
        ctx.log(f"error: {exc}")
    run_stages(ctx, ("gate",))
    gated = dt.datetime.now(dt.timezone.utc)
    record = ctx.results["gate"]
    if record["decision"] == "pass" and publish:
        try:
            run_stages(ctx, RELEASE)
        except GoldenError as exc:
            ctx.log(f"error: {exc}")
    entry = ctx.results.get("entry")
    if ctx.emergency:
        finished = dt.datetime.now(dt.timezone.utc)
        write_json_atomic(ctx.run.path("emergency.json"), {
            "cve": ctx.emergency, "started_at": started.isoformat(timespec="seconds"),
            "rebuilt_at": gated.isoformat(timespec="seconds") if record["decision"] == "pass" else None,
            "finished_at": finished.isoformat(timespec="seconds"), "published": entry is not None,
            "mttr_seconds": round((finished - started).total_seconds(), 1) if entry else None,
            "gone": record.get("emergency", {}).get("gone")})
        _note_emergency(ctx, record, entry, started, gated)
    dashboard = store_dashboard(ctx.store.root)
    ctx.log(f"report: {report.render(ctx.run, os.path.relpath(dashboard, ctx.run.dir))}")
    return ctx.run, record, entry


def _note_emergency(ctx, record, entry, started, gated):
    """The store's emergency ledger (what `golden kpi` reads for MTTR): rebuilt, then published."""
    from pipeline.kpi import emergencies
    if record["decision"] == "pass":
        emergencies.note_rebuilt(ctx.store, ctx.emergency, ctx.run.version, started_at=started, at=gated)
    if entry is not None:
        emergencies.note_published(ctx.store, ctx.emergency, ctx.run.version, at=entry["published_at"])


def _emergency_verdict(run, cve, record):
    """The candidate's scan must show the CVE gone: known to the feeds, and not affecting any package."""
    scan_record = read_json(run.path("scan.json"), "scan record") if os.path.exists(run.path("scan.json")) else None
    findings = [f for f in (scan_record or {}).get("findings", []) if f.get("id") == cve]
    present = [f for f in findings if f.get("state") != "not-affected"]
    gone = scan_record is not None and bool(findings) and not present
    record["emergency"] = {"cve": cve, "gone": gone, "findings": findings}
    if not gone:
        record["decision"] = "fail"
        why = ("the scan did not run" if scan_record is None else
               f"the feeds do not know {cve}: its absence cannot be proven" if not findings else
               f"{cve} is still present: " + ", ".join(f"{f['package']} {f['version']} ({f['state']})" for f in present))
        record["reasons"].append(f"emergency: {why}")
    write_json_atomic(run.path("gate.json"), record)
    return record
