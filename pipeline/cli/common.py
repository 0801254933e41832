"""What the command modules share: the common options, and how an option names a spec, a run or a feed."""

import argparse
import os

from pipeline.checks.baseline import Baseline
from pipeline.errors import GoldenError
from pipeline.evidence.rundir import Run
from pipeline.image.spec import ImageSpec
from pipeline.paths import ROOT

DEFAULT_SPEC = os.path.join("images", "golden-linux.yaml")


def parents():
    """Parent parsers of the shared options, by name: common, spec, run, workers, exceptions."""
    env = os.environ.get
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--runs-dir", default=env("GOLDEN_RUNS", os.path.join(ROOT, "runs")),
                        help="where run directories go (env GOLDEN_RUNS; default: runs/ in the repository)")
    common.add_argument("--store", default=env("GOLDEN_STORE", os.path.join(ROOT, "store")),
                        help="the local image store (env GOLDEN_STORE; default: store/ in the repository)")
    common.add_argument("--cache", default=env("GOLDEN_CACHE", os.path.expanduser("~/.cache/golden")),
                        help="cache for base images and probes (env GOLDEN_CACHE; default: ~/.cache/golden)")
    spec = argparse.ArgumentParser(add_help=False)
    spec.add_argument("--spec", default=DEFAULT_SPEC, help=f"image spec (default: {DEFAULT_SPEC})")
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument("--run", required=True, help="run directory, or version such as golden-linux-2026.11.26+1")
    workers = argparse.ArgumentParser(add_help=False)
    workers.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default: 2)")
    exceptions = argparse.ArgumentParser(add_help=False)
    exceptions.add_argument("--exceptions", action="append", metavar="PATH",
                            help="exception file or directory (repeatable; default: cis_checks/exceptions)")
    return argparse.Namespace(common=common, spec=spec, run=run, workers=workers, exceptions=exceptions)


def load_spec(path):
    return ImageSpec.load(path, Baseline.load())


def open_run(args):
    return Run.open(args.run, args.runs_dir)


def run_spec(run, args):
    """The spec a run was built from (recorded in run.json), else --spec."""
    return load_spec(run.meta.get("spec", args.spec))


def feed_sources(items, option="--feed"):
    """`--feed KIND=PATH_OR_URL` options as {kind: [location]}; paths made absolute."""
    sources = {}
    for item in items:
        kind, sep, loc = item.partition("=")
        if not sep or not kind or not loc:
            raise GoldenError(f"{item!r} is not KIND=PATH_OR_URL", field=option)
        sources.setdefault(kind, []).append(loc if "://" in loc else os.path.abspath(loc))
    return sources


def add(sub, name, func, help, parents=()):
    """A subcommand whose description is its help line."""
    sp = sub.add_parser(name, help=help, description=help, parents=list(parents))
    sp.set_defaults(func=func)
    return sp
