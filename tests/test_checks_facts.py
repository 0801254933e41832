"""The fact collector run for real, here, as the candidate runs it: one shell script as root. Its
process snapshot must show what runs on the host and never the collector's own probes."""

import os
import socket
import subprocess

import pytest

from pipeline.checks import facts
from pipeline.checks.facts import Facts, Request

# Distinctive durations, so that a line of `ps` names exactly one of these processes.
PROBE, ORPHAN, OUTSIDER = "sleep 3.101", "sleep 3.202", "sleep 3.303"


def collect(request):
    proc = subprocess.run(["sh", "-c", request.script()], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return Facts.parse(proc.stdout)


@pytest.mark.skipif(os.geteuid() != 0, reason="the collector runs as root, as on the candidate")
def test_the_process_snapshot_never_shows_the_collectors_own_probes(monkeypatch):
    # A probe that lingers while the snapshot is taken, and one that outlives its section (an orphan,
    # re-parented away from the collector), as `chronyd -p` lingered in the gate that failed falsely.
    monkeypatch.setitem(facts.SECTIONS, "a_lingering_probe", f"{PROBE} & ({ORPHAN} &); wait")
    outsider = subprocess.Popen(OUTSIDER.split())
    try:
        req = Request()
        req.add("a_lingering_probe")
        req.add("processes")
        got = collect(req)
    finally:
        outsider.kill()
        outsider.wait()
    running = [line.split(None, 2) + [""] for line in got.lines("processes")]
    args = [a.strip() for _, _, a, *_ in running]
    assert OUTSIDER in args                              # the snapshot sees what runs on the host
    assert PROBE not in args and ORPHAN not in args, args
    assert not [a for a in args if a.startswith(("ps -eo", "awk -v self="))]   # nor its own ps


def test_snapshots_start_before_any_other_section():
    req = Request()
    req.add("sshd")
    req.add("processes")
    req.add("listening")
    script = req.script()
    first_probe = script.index("sshd -T")
    assert script.index("ps -eo") < script.index("wait") < first_probe
    assert script.index("ss -Htulnp") < script.index("wait")


def test_a_registered_snapshot_section_runs_with_the_snapshots(monkeypatch):
    for name in ("SECTIONS", "SNAPSHOTS", "_REGISTERED_BY"):
        monkeypatch.setattr(facts, name, type(getattr(facts, name))(getattr(facts, name)))
    facts.register("golden_test_status", "echo confined", snapshot=True)
    req = Request()
    req.add("uname")
    req.add("golden_test_status")
    script = req.script()
    assert script.index("echo confined") < script.index("wait") < script.index("uname -r")


@pytest.mark.parametrize("name", ["processes", "listening"])
@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_an_empty_snapshot_is_an_error_not_a_quiet_host(name, text):
    """ps or ss failing on the host: 2.3.3.2, 2.1.21 and 6.1.3.7 must error, not pass on "nothing runs"."""
    with pytest.raises(facts.FactError, match=f"fact section '{name}' came back empty"):
        Facts({name: text}).lines(name)


@pytest.mark.skipif(os.geteuid() != 0, reason="the collector runs as root, as on the candidate")
def test_a_real_host_never_gives_an_empty_snapshot():
    """What the snapshots hold on a host, collected for real: processes besides the collector's own, and
    a listener (here one this test opens, as sshd's is on the candidate)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        req = Request()
        req.add("processes")
        req.add("listening")
        got = collect(req)
    assert got.lines("processes")
    assert any(f"127.0.0.1:{port} " in line for line in got.lines("listening")), got.lines("listening")
