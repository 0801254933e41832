"""tests/data/max-auth-tries.sh, the customize script the end-to-end variant runs in its build VM,
run here for real in a private mount namespace (tmpfs over sshd_config.d and /run: the host's own
are untouched): after a hardening that wrote the baseline's bound, it must break 5.1.16 and not 5.1.1."""

import os
import shutil
import subprocess

import pytest

from pipeline.checks import expect
from pipeline.checks.baseline import Baseline
from pipeline.checks.facts import Facts
from pipeline.checks.kinds import KINDS

from .conftest import ROOT

SCRIPT = os.path.join(ROOT, "tests", "data", "max-auth-tries.sh")
DROPINS = "/etc/ssh/sshd_config.d"


def after_variant(hardened_bound):
    """`sshd -T` and the drop-ins' stat lines after the hardening's MaxAuthTries and the script."""
    # sshd -T (here and in the script) needs its privilege separation directory, which exists only
    # where sshd has run: a private /run has one.
    inner = (f"mount -t tmpfs tmpfs {DROPINS} && mount -t tmpfs tmpfs /run && mkdir -p /run/sshd && "
             f"echo 'MaxAuthTries {hardened_bound}' > {DROPINS}/50-golden-cis.conf "
             f"&& chmod 0600 {DROPINS}/50-golden-cis.conf && sh {SCRIPT} && echo '@@golden-fact@@ sshd' && sshd -T "
             f"&& echo '@@golden-fact@@ stat' && stat -c '{DROPINS}/*.conf|%n|%a|%U|%G|%F' {DROPINS}/*.conf")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", inner], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return Facts.parse(proc.stdout)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sshd") or not os.path.isdir(DROPINS),
                    reason="needs root, OpenSSH's sshd and its drop-in directory")
@pytest.mark.parametrize("bound", [None, 12])
def test_the_variant_script_violates_5_1_16_at_any_bound_and_nothing_else(bound):
    values = Baseline.load().values("5.1.16")
    if bound is not None:           # a baseline that changed its bound; the hardening writes the new one
        values = dict(values, sshd={"maxauthtries": {"at_most": bound}})
    facts = after_variant(expect.target(values["sshd"]["maxauthtries"]))
    assert KINDS["sshd"].evaluate(values["sshd"], facts), facts.sshd["maxauthtries"]
    dropins = {p: w for p, w in Baseline.load().values("5.1.1")["files"].items() if p.startswith(DROPINS)}
    assert dropins and KINDS["files"].evaluate(dropins, facts) == []       # 5.1.1 holds for the drop-ins
