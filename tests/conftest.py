"""Fixtures for the project's own tests. End-to-end tests share one `golden run` of the default
spec per session (the base image is cached in GOLDEN_CACHE, so only the first session builds it)."""

import json
import os
import subprocess
import sys

import pytest

from pipeline.paths import ROOT


def golden(*args, dirs, timeout=3600):
    """Run the real `golden` command; returns the CompletedProcess (stdout: JSON summary)."""
    cmd = [sys.executable, "-m", "pipeline.cli", *args, "--runs-dir", str(dirs["runs"]), "--store",
           str(dirs["store"]), "--cache", str(dirs["cache"])]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def variant_spec(name, source="golden-linux.yaml", **changes):
    """A spec layered on one of images/ (`extends:`), under another name, with its changes on top
    (`base!` replaces the inherited base: a variant built on a published image)."""
    return {"extends": os.path.join(ROOT, "images", source), "name": name, **changes}


@pytest.fixture(scope="session")
def e2e_dirs(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests build images: run them as root (./setup.sh pytest tests)")
    root = tmp_path_factory.mktemp("e2e")
    cache = os.environ.get("GOLDEN_CACHE", os.path.expanduser("~/.cache/golden"))
    return {"runs": root / "runs", "store": root / "store", "cache": cache, "root": root}


def start_spec(dirs, spec=None, log="golden-run.stderr", *extra):
    """`golden run` (of SPEC, else the default spec) started in the background, its stderr going to
    LOG in the e2e root; finish it with finish_spec. Runs of one image at once are safe: each
    allocates its version with an exclusive mkdir."""
    cmd = [sys.executable, "-m", "pipeline.cli", "run", *(["--spec", str(spec)] if spec else []), *extra,
           "--runs-dir", str(dirs["runs"]), "--store", str(dirs["store"]), "--cache", str(dirs["cache"])]
    err = open(dirs["root"] / log, "w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    return proc, err, spec


def finish_spec(started, timeout=3600):
    """Wait for a start_spec run: {"exit", "summary", "stderr"}."""
    proc, err, spec = started
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    err.seek(0)
    stderr = err.read()
    err.close()
    try:
        summary = json.loads(out)
    except ValueError:
        pytest.fail(f"golden run {spec or ''} printed no summary (exit {proc.returncode}):\n{stderr[-4000:]}")
    return {"exit": proc.returncode, "summary": summary, "stderr": stderr}


def run_spec(dirs, spec=None, log="golden-run.stderr", *extra):
    """`golden run` (of SPEC, else the default spec) with its stderr kept in the e2e root:
    {"exit", "summary", "stderr"}."""
    return finish_spec(start_spec(dirs, spec, log, *extra))


def published_entry(run, dirs):
    """(version, path, sha256) of a run that must have published."""
    if run["exit"] != 0:
        pytest.fail("the spec was not published:\n" + json.dumps(run["summary"], indent=2))
    entry = json.load(open(dirs["store"] / "index.json"))["images"][run["summary"]["version"]]
    return entry["version"], str(dirs["store"] / entry["file"]), entry["sha256"]


@pytest.fixture(scope="session")
def default_run(e2e_dirs):
    """`golden run` on images/golden-linux.yaml, end to end."""
    return run_spec(e2e_dirs)


@pytest.fixture(scope="session")
def published(default_run, e2e_dirs):
    """The default spec's published image: (version, path, sha256)."""
    return published_entry(default_run, e2e_dirs)


@pytest.fixture(scope="session")
def web_published(published, e2e_dirs):
    """images/golden-web.yaml built on the default spec's published image: (version, path, sha256)."""
    return published_entry(run_spec(e2e_dirs, os.path.join(ROOT, "images", "golden-web.yaml"), "golden-run-web.stderr"),
                           e2e_dirs)
