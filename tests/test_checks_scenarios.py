"""Every data-shaped violation scenario really violates its baseline bound: the value the scenario
writes is judged with the code the check uses (expect.check, the files kind), in seconds, so a
scenario that went stale with a baseline change fails here and not in a 15-minute boot."""

import fnmatch
import os
import re
import shlex
import subprocess

import pytest

from pipeline.checks import expect, scenarios
from pipeline.checks.baseline import Baseline
from pipeline.checks.facts import Facts
from pipeline.checks.kinds import KINDS

from .conftest import ROOT

# The helpers of cis_checks/scenarios.sh that set one keyed value: helper -> (kind, config source).
SETTERS = {"sshd_option": ("sshd", None), "sysctl_violate": ("sysctl", None), "kernel_param_set": ("kernel_cmdline", None),
           "login_defs_set": ("config", "login_defs"), "pwquality_local": ("config", "pwquality"),
           "journald_set": ("config", "journald"), "auditd_conf_set": ("config", "auditd"),
           "rsyslog_set": ("config", "rsyslog")}
VIOLATING = re.compile(r"^\$\(violating (\S+)\)$")
OCTAL = re.compile(r"^[0-7]{3,4}$")


def commands(script):
    """The simple commands of a scenario script (split at &&, ||, ; and newlines), as argument lists."""
    lexer = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    out, current = [], []
    for token in lexer:
        if token in (";", "&&", "||", "|"):
            out, current = out + [current] if current else out, []
        else:
            current.append(token)
    return out + [current] if current else out


def settings(scenario):
    """What a scenario writes through the setter helpers and chmod: [(kind, source, key, value)]."""
    derived = dict(scenario.violating)
    out = []
    for words in commands(scenario.script):
        args = [derived.get(m.group(1), f"<no violating value of {m.group(1)}>") if (m := VIOLATING.match(w)) else w
                for w in words]
        if args[0] in SETTERS and len(args) == 3:
            kind, source = SETTERS[args[0]]
            out.append((kind, source, args[1].lower() if kind == "sshd" else args[1], args[2]))
        elif args[0] == "chmod" and len(args) == 3 and OCTAL.match(args[1]):
            out.append(("files", None, args[2], args[1]))
    return out


def data_shaped(scenario, values):
    """The settings of a scenario that the control's data kinds judge (a logic-shaped control's own)."""
    return [s for s in settings(scenario) if s[0] in values]


def stale(scenario, values):
    """Why a data-shaped scenario does not violate its control's baseline entry (empty: it does)."""
    problems = []
    for kind, source, key, value in data_shaped(scenario, values):
        if kind == "files":
            patterns = [p for p, want in (values.get("files") or {}).items() if fnmatch.fnmatchcase(key, p) and "mode" in want]
            facts = Facts({"stat": "\n".join(f"{p}|{key}|{value}|root|root|regular file" for p in patterns)})
            if not patterns:
                problems.append(f"chmod {value} {key}: no file mode of the control's baseline entry covers {key}")
            elif not KINDS["files"].evaluate({p: {"mode": values["files"][p]["mode"]} for p in patterns}, facts):
                problems.append(f"chmod {value} {key} is within the baseline's mode for it")
            continue
        entry = values.get(kind) or {}
        entry = entry.get(source) or {} if source else entry
        if key not in entry:
            problems.append(f"{kind} {key}: the control's baseline entry does not check it")
        elif expect.check(value, entry[key]):
            problems.append(f"{kind} {key} {value!r} satisfies the baseline's {expect.describe(entry[key])}")
    return problems


@pytest.fixture(scope="module")
def catalogue_scenarios():
    baseline = Baseline.load()
    return baseline, scenarios.collect(baseline=baseline)


def test_every_data_shaped_scenario_violates_its_baseline_bound(catalogue_scenarios):
    baseline, found = catalogue_scenarios
    judged = {i: s for i, s in found.items() if data_shaped(s, baseline.values(i))}
    assert len(judged) > 60          # the sshd, sysctl, config, kernel command line and file-mode scenarios
    problems = {i: stale(s, baseline.values(i)) for i, s in judged.items()}
    assert not {i: p for i, p in problems.items() if p}, problems


def test_a_stale_scenario_is_caught(catalogue_scenarios):
    baseline, _ = catalogue_scenarios
    raised = dict(baseline.values("5.1.16"), sshd={"maxauthtries": {"at_most": 12}})
    literal = scenarios.Scenario("5.1.16", "sshd_option MaxAuthTries 10", "here")
    assert stale(literal, raised) == ["sshd maxauthtries '10' satisfies the baseline's at most 12"]
    assert stale(scenarios.Scenario("5.1.16", "sshd_option MaxSessions 10", "here"), raised) == [
        "sshd maxsessions: the control's baseline entry does not check it"]
    assert stale(scenarios.Scenario("5.1.1", "chmod 0600 /etc/ssh/sshd_config.d/50-golden-cis.conf", "here"),
                 baseline.values("5.1.1")) == [
        "chmod 0600 /etc/ssh/sshd_config.d/50-golden-cis.conf is within the baseline's mode for it"]


def test_a_derived_scenario_follows_the_baseline(catalogue_scenarios):
    baseline, found = catalogue_scenarios
    assert 'sshd_option MaxAuthTries "$(violating maxauthtries)"' == found["5.1.16"].script
    raised = dict(baseline.values("5.1.16"), sshd={"maxauthtries": {"at_most": 12}})
    derived = scenarios.Scenario("5.1.16", found["5.1.16"].script, "here", scenarios.violating_values(raised))
    assert settings(derived) == [("sshd", None, "maxauthtries", "13")] and stale(derived, raised) == []


def test_violating_prints_the_derived_value_in_the_scenario_shell(catalogue_scenarios):
    _, found = catalogue_scenarios
    prelude = os.path.join(ROOT, "cis_checks", "scenarios.sh")
    env = dict(os.environ, GOLDEN_SCENARIO="5.1.16",
               GOLDEN_VIOLATING="".join(f"{k} {v}\n" for k, v in found["5.1.16"].violating))
    run = lambda line: subprocess.run(["sh", "-e", "-c", f". {prelude}\n{line}"], env=env,  # noqa: E731
                                      capture_output=True, text=True)
    assert run("violating maxauthtries").stdout == "5\n"
    missing = run("violating maxsessions")
    assert missing.returncode != 0 and "gives no violating value of maxsessions" in missing.stderr
