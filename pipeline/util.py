"""Small shared helpers: digests, tool lookup, atomic writes, progress lines."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from pipeline.errors import GoldenError


def sha256_file(path, chunk=4 << 20):
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    except FileNotFoundError:
        raise GoldenError("file not found", file=path) from None
    return h.hexdigest()


def require_tool(name, package):
    path = shutil.which(name)
    if not path:
        raise GoldenError(f"{name} is not installed; install the Debian package {package!r} "
                          f"(apt-get install {package})", field=name)
    return path


def write_json_atomic(path, data):
    """Write JSON so readers see the old file or the new one, never half of one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path, what="JSON file"):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise GoldenError(f"{what} not found", file=path) from None
    except json.JSONDecodeError as exc:
        raise GoldenError(f"malformed {what}: {exc.msg}", file=path, line=exc.lineno) from None


class Progress:
    """One line per step on stderr, with the time since the step began."""

    def __init__(self, stage, stream=None):
        self.stage = stage
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()

    def __call__(self, message):
        self.stream.write(f"[{self.stage} {time.monotonic() - self.t0:6.1f}s] {message}\n")
        self.stream.flush()


def stop_process(proc, grace=10):
    """Stop a child: SIGTERM, then SIGKILL if it is still there after `grace` seconds; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
