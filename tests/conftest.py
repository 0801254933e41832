"""Fixtures for the project's own tests. End-to-end tests share one `golden run` of the default
spec per session (the base image is cached in GOLDEN_CACHE, so only the first session builds it)."""

import json
import os
import subprocess
import sys

import pytest

from pipeline.paths import ROOT  # noqa: F401  (the tests' import of it)


def golden(*args, dirs, timeout=3600):
    """Run the real `golden` command; returns the CompletedProcess (stdout: JSON summary)."""
    cmd = [sys.executable, "-m", "pipeline.cli", *args, "--runs-dir", str(dirs["runs"]), "--store",
           str(dirs["store"]), "--cache", str(dirs["cache"])]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def e2e_dirs(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests build images: run them as root (./setup.sh pytest tests)")
    root = tmp_path_factory.mktemp("e2e")
    cache = os.environ.get("GOLDEN_CACHE", os.path.expanduser("~/.cache/golden"))
    return {"runs": root / "runs", "store": root / "store", "cache": cache, "root": root}


@pytest.fixture(scope="session")
def default_run(e2e_dirs):
    """`golden run` on images/golden-linux.yaml, end to end."""
    proc = golden("run", dirs=e2e_dirs)
    with open(e2e_dirs["root"] / "golden-run.stderr", "w") as fh:
        fh.write(proc.stderr)
    try:
        summary = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"golden run printed no summary (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return {"exit": proc.returncode, "summary": summary, "stderr": proc.stderr}


@pytest.fixture(scope="session")
def published(default_run, e2e_dirs):
    """The default spec's published image: (version, path, sha256)."""
    if default_run["exit"] != 0:
        pytest.fail("the default spec was not published:\n" + json.dumps(default_run["summary"], indent=2))
    index = json.load(open(e2e_dirs["store"] / "index.json"))
    entry = index["images"][default_run["summary"]["version"]]
    return entry["version"], str(e2e_dirs["store"] / entry["file"]), entry["sha256"]
