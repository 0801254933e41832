"""Facts gathered once per host and shared. Under pytest-xdist every worker would otherwise run the
collector itself; instead the first worker to ask runs it while the others wait on a lock, then
they read its output.

    out = gather(config, host, key, script)     # the collector's output for this host
"""

import fcntl
import hashlib
import os
import shutil
import tempfile

import pytest

from pipeline.errors import GoldenError

SHARED_DIR = pytest.StashKey()


def gather(config, host, key, script):
    shared = getattr(config, "workerinput", {}).get("golden_facts_dir")
    if not shared:
        return _collect(host, key, script)
    name = hashlib.sha256(f"{key}\0{script}".encode()).hexdigest()[:24]
    path = os.path.join(shared, name)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        out = _collect(host, key, script)
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(out)
        os.replace(path + ".tmp", path)
        return out


def _collect(host, key, script):
    result = host.run(script)
    if result.rc == 255 or not result.stdout.strip():
        raise GoldenError(f"fact collection failed on {key} (exit {result.rc}): {result.stderr.strip()[:500]}")
    return result.stdout


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput["golden_facts_dir"] = _shared_dir(node.config)


def _shared_dir(config):
    """A directory the xdist workers share their fact collections in, removed with the session."""
    if SHARED_DIR not in config.stash:
        config.stash[SHARED_DIR] = tempfile.mkdtemp(prefix="golden-facts-")
        config.add_cleanup(lambda: shutil.rmtree(config.stash[SHARED_DIR], ignore_errors=True))
    return config.stash[SHARED_DIR]
