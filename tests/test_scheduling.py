"""The shipped schedulers: the systemd timer + service pair and the CI workflow cannot rot.

    .venv/bin/python -m pytest tests/test_scheduling.py -q
    (systemd-analyze verify on the units; every `golden VERB` the workflow runs answers --help)
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

from pipeline.errors import GoldenError
from pipeline.image.spec import ImageSpec
from pipeline.paths import ROOT

UNITS_DIR = os.path.join(ROOT, "packaging", "systemd")
UNITS = ("golden-due.service", "golden-due.timer")
EXAMPLE_ROOT = "/opt/golden"              # the path the units are written for (packaging/systemd/README.md)
WORKFLOW = os.path.join(ROOT, ".github", "workflows", "golden-images.yml")
SHELL_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "`", "$("}

systemd_analyze = shutil.which("systemd-analyze")
shellcheck = shutil.which("shellcheck")


def render_units(dest, root=ROOT, edit=None):
    """The units as installed for a checkout at `root`; `edit(name, text)` may break one on purpose."""
    paths = []
    for name in UNITS:
        with open(os.path.join(UNITS_DIR, name)) as fh:
            text = fh.read().replace(EXAMPLE_ROOT, root)
        path = os.path.join(dest, name)
        with open(path, "w") as fh:
            fh.write(edit(name, text) if edit else text)
        paths.append(path)
    return paths


def verify_units(paths):
    """(exit code, output) of `systemd-analyze verify`; it loads the units offline, PID 1 need not be systemd."""
    env = dict(os.environ, SYSTEMD_LOG_LEVEL="info", SYSTEMD_LOG_COLOR="0")
    proc = subprocess.run([systemd_analyze, "--man=no", "verify", *paths], capture_output=True, text=True,
                          env=env, timeout=30)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


@pytest.mark.skipif(systemd_analyze is None, reason="systemd-analyze not installed (Debian package systemd)")
def test_units_verify_clean_with_the_repository_path(tmp_path):
    assert os.path.isfile(os.path.join(ROOT, "setup.sh"))
    rc, out = verify_units(render_units(str(tmp_path)))
    assert (rc, out) == (0, "")
    with open(os.path.join(UNITS_DIR, "golden-due.service")) as fh:
        service = fh.read()
    for line in ("Type=oneshot", f"WorkingDirectory={EXAMPLE_ROOT}",
                 f"ExecStart={EXAMPLE_ROOT}/setup.sh golden due --rebuild", "Environment=GOLDEN_STORE=",
                 "Environment=GOLDEN_RUNS=", "Environment=GOLDEN_CACHE=", "TimeoutStartSec=3h"):
        assert line in service
    for sandbox in ("PrivateDevices=", "DevicePolicy=", "ProtectSystem=", "CapabilityBoundingSet="):
        assert f"\n{sandbox}" not in service, f"{sandbox} would take /dev/kvm, loop devices or mounts from the build"


@pytest.mark.skipif(systemd_analyze is None, reason="systemd-analyze not installed (Debian package systemd)")
@pytest.mark.parametrize("name, old, new, expect", [
    ("golden-due.service", "Nice=10", "Nicee=10", "Unknown key 'Nicee'"),
    ("golden-due.service", "ExecStart=" + ROOT + "/setup.sh", "ExecStart=" + ROOT + "/no-such-setup.sh",
     "is not executable"),
    ("golden-due.timer", "OnCalendar=daily", "OnCalendar=dailly", "Failed to parse calendar specification"),
])
def test_verify_catches_a_broken_unit(tmp_path, name, old, new, expect):
    def edit(unit, text):
        if unit != name:
            return text
        assert old in text
        return text.replace(old, new)
    rc, out = verify_units(render_units(str(tmp_path), edit=edit))
    assert expect in out
    # A typo'd key is only a warning to systemd-analyze (exit 0): the clean case asserts no output at all.
    assert rc != 0 or "Unknown key" in expect


def golden_invocations(script):
    """Each `golden VERB [WORD]` a shell script runs, directly or through ./setup.sh, as a tuple of words."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()`")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
        for i, word in enumerate(words):
            if word != "golden" and not word.endswith("/golden"):
                continue
            command = []
            for arg in words[i + 1:i + 3]:
                # An option, an expression or a separator ends the command words.
                if arg.startswith(("-", "$")) or arg in SHELL_SEPARATORS or not arg.replace("-", "").isalnum():
                    break
                command.append(arg)
            found.append(tuple(command))
    return found


def workflow_problems(path, help_cache):
    """What is wrong with a workflow: commands golden lacks, missing or unloadable specs, jobs without runs/."""
    with open(path) as fh:
        doc = yaml.safe_load(fh)
    problems = []
    for job_id, job in doc["jobs"].items():
        steps = job.get("steps", [])
        for step in steps:
            problems += [f"job {job_id}: {p}" for p in shell_problems(step.get("run", ""))]
            for command in golden_invocations(step.get("run", "")):
                ok, reason = help_cache.get(command) or help_cache.setdefault(command, golden_help(command))
                if not ok:
                    problems.append(f"job {job_id}: `golden {' '.join(command)}` does not exist: {reason}")
        matrix = job.get("strategy", {}).get("matrix", {})
        for spec in [*matrix.get("spec", []), *(row["spec"] for row in matrix.get("include", []) if "spec" in row)]:
            try:
                ImageSpec.load(os.path.join(ROOT, spec))
            except (GoldenError, OSError) as exc:
                problems.append(f"job {job_id}: matrix spec {spec} does not load: {exc}")
        uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
        if not any("runs/" in str(s.get("with", {}).get("path", "")).split() for s in uploads):
            problems.append(f"job {job_id}: uploads no artifact with path runs/ (the run directory)")
    return problems


def shell_problems(script):
    """shellcheck's findings on a `run:` script (bash, as the runner runs it), expressions made plain words."""
    if not script or shellcheck is None:
        return []
    plain = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", script)
    proc = subprocess.run([shellcheck, "--shell=bash", "--format=gcc", "-"], input=plain, capture_output=True,
                          text=True, timeout=30)
    return [line.replace("-:", "run script line ", 1) for line in proc.stdout.splitlines()]


def golden_help(command):
    """(True, "") when `golden COMMAND --help` exits 0, else (False, its last line)."""
    if not command:
        return False, "no command after `golden`"
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *command, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    last = (proc.stderr or proc.stdout).strip().splitlines()
    return proc.returncode == 0, last[-1] if last else f"exit {proc.returncode}"


@pytest.mark.skipif(shellcheck is None, reason="shellcheck not installed (Debian package shellcheck, in setup.sh)")
def test_workflow_runs_only_commands_that_exist():
    help_cache = {}
    problems = workflow_problems(WORKFLOW, help_cache)
    assert problems == []
    # The checker did look: the build, the emergency and the schedule's commands were all found.
    assert {("run",), ("due",)} <= set(help_cache)
    with open(WORKFLOW) as fh:
        doc = yaml.safe_load(fh)
    triggers = doc.get("on", doc.get(True))        # YAML 1.1 reads a bare `on` key as true
    assert {"push", "schedule", "workflow_dispatch"} <= set(triggers)
    assert "cve" in triggers["workflow_dispatch"]["inputs"]
    matrix = doc["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert [row["spec"] for row in matrix] == ["images/golden-linux.yaml", "images/golden-bastion.yaml"]
    assert "kvm" in doc["jobs"]["build"]["runs-on"] and "self-hosted" in doc["jobs"]["build"]["runs-on"]


@pytest.mark.skipif(shellcheck is None, reason="shellcheck not installed (Debian package shellcheck, in setup.sh)")
def test_checker_reports_a_workflow_that_rotted(tmp_path):
    broken = tmp_path / "rotten.yml"
    broken.write_text(yaml.safe_dump({"on": {"push": {}}, "jobs": {
        "build": {"runs-on": "self-hosted", "strategy": {"matrix": {"spec": ["images/no-such-image.yaml"]}},
                  "steps": [{"run": "./setup.sh golden frobnicate --spec ${{ matrix.spec }}"},
                            {"run": "echo start && golden release awz golden-linux-2026.12.01+1"},
                            {"run": 'if [ "$rc" = 0 ]; then echo done'},
                            {"uses": "actions/upload-artifact@v4", "with": {"path": "reports/"}}]}}}))
    problems = workflow_problems(str(broken), {})
    commands = [p for p in problems if "does not exist" in p]
    assert len(commands) == 2, problems
    assert "`golden frobnicate` does not exist" in commands[0] and "invalid choice: 'frobnicate'" in commands[0]
    assert "`golden release awz` does not exist" in commands[1]
    assert any("run script line 1:" in p and "Expected 'fi'" in p for p in problems), problems
    assert sum("matrix spec images/no-such-image.yaml does not load" in p for p in problems) == 1
    assert sum("uploads no artifact with path runs/" in p for p in problems) == 1


def test_invocations_are_found_through_setup_sh_and_separators():
    script = ('rc=0\n./setup.sh golden due --json > due.json || rc=$?\n'
              'golden channel show stable --json; .venv/bin/golden cve CVE-2026-1 \\\n  --json\n'
              'echo "golden is not a command here" # golden neither\n')
    assert golden_invocations(script) == [("due",), ("channel", "show"), ("cve", "CVE-2026-1")]
