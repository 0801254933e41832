"""Commands of one candidate's run: run, base, build, boot, test, gate, publish, report."""

import contextlib
import datetime as dt
import json
import os
import tempfile
import time

from pipeline import stages
from pipeline.cli import release
from pipeline.cli.common import add, load_spec, open_run, run_spec
from pipeline.errors import GoldenError
from pipeline.store.store import Store
from pipeline.util import Progress


def _context(args, spec, log, **extra):
    return stages.Context(spec, Store(args.store), args.cache, log,
                          exception_paths=getattr(args, "exceptions", None), **extra)


def cmd_run(args):
    ctx = _context(args, load_spec(args.spec), Progress("run"), workers=args.workers, emergency=args.emergency)
    run, record, entry = stages.run_pipeline(ctx, args.runs_dir)
    summary = {"version": run.version, "run_dir": run.dir, "decision": record["decision"],
               "reasons": record["reasons"], "counts": record["counts"], "published": entry is not None,
               "timings": run.timings()}
    print(json.dumps(summary, indent=2))
    return 0 if entry else 1


def cmd_base(args):
    from pipeline.image.base import ensure_base
    spec = load_spec(args.spec)
    base = ensure_base(spec.base, args.cache, Progress("base"), rebuild=args.rebuild, store=Store(args.store))
    print(json.dumps({"path": base.path, "sha256": base.sha256, "origin": base.origin}, indent=2))


def cmd_build(args):
    ctx = _context(args, load_spec(args.spec), Progress("build"))
    run = stages.new_run(ctx, args.runs_dir)
    stages.run_stages(ctx, stages.BUILD)
    info = ctx.results["artifact"]
    print(json.dumps({"version": run.version, "run_dir": run.dir, "artifact": info["path"], "sha256": info["sha256"]},
                     indent=2))


def cmd_boot(args):
    """Boot until Ctrl-C (exit 130) or the guest powers off (exit 0). Keys and console go to --workdir,
    a run's boot-interactive/, or a temporary directory removed when the VM stops."""
    from pipeline.evidence.rundir import Run
    from pipeline.vm.boot import booted
    image = args.image
    workdir = args.workdir
    if not os.path.isfile(image):
        run = Run.open(image, args.runs_dir)
        image, workdir = run.artifact, workdir or run.path("boot-interactive")
    log = Progress("boot")
    with contextlib.ExitStack() as stack:
        workdir = workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix="golden-boot-"))
        cand = stack.enter_context(booted(image, workdir, cache_dir=args.cache, log=log))
        print(f"candidate up: ssh -F {cand.ssh_config} golden-candidate\n"
              f"test it:      pytest cis_checks acceptance --hosts='{cand.hostspec}' --sudo\n"
              "Ctrl-C stops the VM (the overlay is discarded).", flush=True)
        while cand.vm.alive:
            time.sleep(1)
    return 0


def cmd_test(args):
    run = open_run(args)
    ctx = _context(args, run_spec(run, args), Progress("test"), run=run, workers=args.workers,
                   extra_args=tuple(args.pytest_args))
    passed = stages.run_stages(ctx, stages.TEST)
    result = ctx.results.get("test") or {}
    print(json.dumps(result | {"command": " ".join(result.get("command", [])), "passed": passed}, indent=2))
    return 0 if passed else 1


def cmd_gate(args):
    from pipeline.checks.exceptions import parse_date
    from pipeline.evidence.gate import decide
    run = open_run(args)
    now = None
    if args.as_of:
        day = parse_date(args.as_of, "--as-of")
        now = dt.datetime.combine(day, dt.time(12, 0), tzinfo=dt.timezone.utc)
    record = decide(run, now=now)
    print(json.dumps({k: record[k] for k in ("version", "decision", "reasons", "counts", "waived", "as_of")},
                     indent=2))
    return 0 if record["decision"] == "pass" else 1


def cmd_publish(args):
    from pipeline.supply.attest import signing_key
    if args.target or args.target_args:
        return release.publish_to_target(args)      # golden publish --target aws|vsphere VERSION
    if not args.run:
        raise GoldenError("give --run RUN (a run's candidate into the store) or --target TARGET VERSION",
                          field="--run")
    run = open_run(args)
    _, public = signing_key(args.cache, create=False)    # publishing trusts a key, it never makes one
    entry = Store(args.store).publish(run, Progress("publish"), public_key=public)
    print(json.dumps(entry, indent=2))


def cmd_report(args):
    from pipeline.evidence import report
    print(report.render(open_run(args)))


def register(sub, p):
    evidence = [n for n in stages.NAMES if n not in stages.RELEASE]
    sp = add(sub, "run", cmd_run, f"all stages: {', '.join(evidence)}, then {' and '.join(stages.RELEASE)} if the "
             "gate passed", [p.common, p.spec, p.workers, p.exceptions])
    sp.add_argument("--emergency", metavar="CVE-ID",
                    help="emergency rebuild: fail unless the new candidate's scan shows this CVE gone; "
                         "records the time to published (MTTR) in emergency.json")
    sp = add(sub, "base", cmd_base, "build (or reuse from cache) the base image of a spec", [p.common, p.spec])
    sp.add_argument("--rebuild", action="store_true", help="ignore the cache and build again")
    add(sub, "build", cmd_build, "new run: build the candidate with Packer", [p.common, p.spec, p.exceptions])
    sp = add(sub, "boot", cmd_boot, "boot an image or a run's candidate (ephemeral overlay) until Ctrl-C", [p.common])
    sp.add_argument("image", help="a qcow2 file, or a run (directory or version)")
    sp.add_argument("--workdir", help="where keys and console log go (default: a temporary directory, "
                                       "removed when the VM stops)")
    sp = add(sub, "test", cmd_test, "inspect, boot, test and reboot a run's candidate (JUnit into the run)",
             [p.common, p.spec, p.run, p.workers, p.exceptions])
    sp.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    sp = add(sub, "gate", cmd_gate, "decide pass/fail from a run's evidence; writes gate.json", [p.common, p.run])
    sp.add_argument("--as-of", metavar="YYYY-MM-DD", help="judge exception expiry on this UTC day (default: now)")
    sp = add(sub, "publish", cmd_publish, "publish a run's candidate into the store if its gate passed and its "
             "signatures verify; with --target aws|vsphere VERSION, a published version's tested bytes to that target "
             "(the same command as golden release TARGET VERSION)", [p.common])
    sp.add_argument("--run", help="run directory, or version such as golden-linux-2026.11.26+1")
    release.add_publish_target(sp)
    add(sub, "report", cmd_report, "render a run's report.html", [p.common, p.run])
