"""Helper processes of a rollout (Prometheus, the load generator): a child that dies with golden, or a
daemon with a pid file that outlives it.

    proc = spawn(["prometheus", ...], log_path)               # child: killed when golden dies (PDEATHSIG)
    spawn(argv, log_path, pid_file="state/p.pid"); stop(running(pid_file, "prometheus"))
"""

import os
import signal
import subprocess
import time

from pipeline.vm.qemu import die_with_parent


def spawn(argv, log_path, pid_file=None, env=None):
    """Start `argv` with stdout and stderr in `log_path`; with `pid_file` it is a daemon in its own session."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=None if pid_file else die_with_parent(signal.SIGTERM))  # noqa: PLW1509 - only prctl runs
    if pid_file:
        tmp = f"{pid_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"{proc.pid}\n")
        os.replace(tmp, pid_file)
    return proc


def running(pid_file, expect):
    """The pid in `pid_file` if that process is alive and its command line contains `expect`, else None."""
    try:
        with open(pid_file, encoding="utf-8") as fh:
            pid = int(fh.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    # A recycled pid runs something else: never signal it.
    return pid if expect in cmdline and not _zombie(pid) else None


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def _gone(pid):
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    except ChildProcessError:
        pass
    return not os.path.exists(f"/proc/{pid}") or _zombie(pid)


def stop(pid, timeout=10.0):
    """SIGTERM, then SIGKILL after `timeout` seconds; returns once the process is gone."""
    if pid is None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.05)
