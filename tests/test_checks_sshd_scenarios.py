"""Every sshd violation scenario, applied for real over the hardening's own drop-in and judged from
this machine's `sshd -T` (OpenSSH 9.2, as in the image), in a private mount namespace: sshd keeps the
first value of most keywords and the last of some (MaxStartups), so a scenario's drop-in must sort
where its value wins, or the end-to-end proof finds its check still passing."""

import os
import shutil
import subprocess

import pytest

from pipeline.checks import scenarios
from pipeline.checks.baseline import Baseline
from pipeline.checks.facts import Facts
from pipeline.checks.kinds import KINDS
from pipeline.image.hardening import plan_rows

DROPINS = "/etc/ssh/sshd_config.d"
BASELINE = Baseline.load()
SSHD_SCENARIOS = sorted((s for s in scenarios.collect().values()
                         if s.script.startswith("sshd_option") and "sshd" in BASELINE.values(s.id)),
                        key=lambda s: s.id)


def hardened_dropin():
    """The lines the hardening's sshd applier writes into 50-golden-cis.conf at Level 2."""
    return "".join(f"{row[2]} {row[3]}\n" for row in plan_rows(BASELINE, "bastion", 2) if row[1] == "sshd")


def sshd_after(scenario):
    script = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"golden-sshd-scenario-{os.getpid()}.sh")
    with open(script, "w", encoding="utf-8") as fh:
        fh.write(scenarios.script([scenario]))
    inner = (f"mount -t tmpfs tmpfs {DROPINS} && mount -t tmpfs tmpfs /run && "
             f"install -m 0600 /dev/null {DROPINS}/50-golden-cis.conf && cat > {DROPINS}/50-golden-cis.conf && "
             f"sh {script} && mkdir -p /run/sshd && echo '@@golden-fact@@ sshd' && sshd -T")
    try:
        proc = subprocess.run(["unshare", "-m", "sh", "-c", inner], input=hardened_dropin(), capture_output=True,
                              text=True, timeout=60)
    finally:
        os.unlink(script)
    assert proc.returncode == 0 and f"{scenarios.APPLY_MARK} ok {scenario.id}" in proc.stdout, proc.stdout + proc.stderr
    return Facts.parse(proc.stdout[proc.stdout.index("@@golden-fact@@ sshd"):])


needs_sshd = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sshd") or not shutil.which("unshare")
                                or not os.path.isdir(DROPINS), reason="needs root, OpenSSH's sshd and unshare")


@needs_sshd
def test_the_hardened_dropin_alone_passes_every_sshd_control():
    facts = sshd_after(scenarios.Scenario("none", "true", "here"))
    for s in SSHD_SCENARIOS:
        assert KINDS["sshd"].evaluate(BASELINE.values(s.id)["sshd"], facts) == [], s.id


@needs_sshd
@pytest.mark.parametrize("scenario", SSHD_SCENARIOS, ids=lambda s: s.id)
def test_each_sshd_scenario_wins_over_the_hardening(scenario):
    facts = sshd_after(scenario)
    assert KINDS["sshd"].evaluate(BASELINE.values(scenario.id)["sshd"], facts), \
        f"{scenario.id}: `{scenario.script}` left sshd -T compliant"


def test_there_are_sshd_scenarios_to_judge():
    assert {"5.1.16", "5.1.18", "5.1.20"} <= {s.id for s in SSHD_SCENARIOS}
