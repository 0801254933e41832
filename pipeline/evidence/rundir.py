"""The run directory `runs/<version>/`: everything one candidate's run wrote, for the audit.

    run = Run.create(runs_root, spec, taken=store.versions())   # allocates golden-<name>-YYYY.MM.DD+N
    run.artifact            # runs/<version>/<version>.qcow2
    with run.stage("build", log): ...                             # timings.json, with status
"""

import contextlib
import datetime as dt
import json
import os
import subprocess
import time

from pipeline.errors import GoldenError
from pipeline.paths import ROOT
from pipeline.store.version import Version, next_build, utc_today
from pipeline.util import write_json_atomic


def git_commit():
    proc = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    commit = proc.stdout.strip() if proc.returncode == 0 else "unknown"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")


class Run:
    def __init__(self, path):
        self.dir = os.path.abspath(path)
        self.version = os.path.basename(self.dir)
        Version.parse(self.version)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def artifact(self):
        return self.path(f"{self.version}.qcow2")

    @property
    def attempt(self):
        """The id of the current test attempt (pipeline.evidence.attempt), None before the first."""
        return (self.meta.get("attempt") or {}).get("id")

    @property
    def meta(self):
        try:
            with open(self.path("run.json"), encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {}

    def update_meta(self, **fields):
        meta = self.meta
        meta.update(fields)
        write_json_atomic(self.path("run.json"), meta)

    @classmethod
    def create(cls, runs_root, spec, taken=(), day=None):
        day = day or utc_today()
        os.makedirs(runs_root, exist_ok=True)
        taken = set(taken) | set(os.listdir(runs_root))
        while True:
            version = next_build(spec.name, day, taken)
            try:
                os.mkdir(os.path.join(runs_root, str(version)))
                break
            except FileExistsError:      # another build of the same day got there first
                taken.add(str(version))
        run = cls(os.path.join(runs_root, str(version)))
        rel = os.path.relpath(spec.path, ROOT)
        run.update_meta(version=str(version), spec=spec.path, image=spec.name, role=spec.role, level=spec.level,
                        # a checkout elsewhere (a CI runner's, the timer's) finds the spec by this
                        **({"spec_in_repository": rel} if not rel.startswith("..") else {}),
                        commit=git_commit(), created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        return run

    @classmethod
    def open(cls, ref, runs_root):
        """A run by directory path or by version."""
        path = ref if os.path.isdir(ref) else os.path.join(runs_root, ref)
        if not os.path.isdir(path):
            raise GoldenError(f"no run directory for {ref!r} (looked in {runs_root})", field="run")
        return cls(path)

    def timings(self):
        try:
            with open(self.path("timings.json"), encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {"stages": []}

    @contextlib.contextmanager
    def stage(self, name, log):
        """Time a stage and record its status (passed, failed, interrupted), whatever happens."""
        t0 = time.monotonic()
        log(f"== {name}")
        outcome = {"status": "passed"}
        status = "failed"
        try:
            yield outcome        # a stage may set outcome["status"] = "failed" without raising
            status = outcome["status"]
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            seconds = round(time.monotonic() - t0, 1)
            data = self.timings()
            data["stages"] = [s for s in data["stages"] if s["stage"] != name]
            data["stages"].append({"stage": name, "seconds": seconds, "status": status})
            data["total_seconds"] = round(sum(s["seconds"] for s in data["stages"]), 1)
            write_json_atomic(self.path("timings.json"), data)
            log(f"== {name} {status} in {seconds}s")
