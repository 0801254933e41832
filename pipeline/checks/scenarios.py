"""Violation scenarios: each control's `violate` script, run as root on a throwaway candidate to
prove that the control's check fails (ComplianceAsCode's *.fail.sh, kept beside the check).

    found = collect()                                # every defined check: {cis id: Scenario}
    failed = apply(runner, [found[i] for i in ids])  # runner(script) -> (exit code, stdout, stderr)

collect() is also the registry of which recommendations have a check (`golden catalogue`).

Helpers the scripts can call live in cis_checks/scenarios.sh. A scenario writes a value derived
from the control's baseline entry with `$(violating KEY)` (expect.violating: the bound plus one...),
so a change of the baseline keeps it violating:

    violate: sshd_option MaxAuthTries "$(violating maxauthtries)"
"""

import glob
import importlib.util
import os
import shlex
from dataclasses import dataclass

from pipeline.checks import checkfile, expect
from pipeline.checks.baseline import Baseline
from pipeline.checks.catalogue import Catalogue
from pipeline.checks.facts import BUS_TIMEOUT
from pipeline.paths import ACCEPTANCE_DIR, CHECKS_DIR

PRELUDE = os.path.join(CHECKS_DIR, "scenarios.sh")
APPLY_MARK = "@@golden-scenario@@"


# Kinds whose baseline values are keyed settings, and the depth of their keys: {key: spec} or
# {source: {key: spec}}.
KEYED = {"sysctl": 1, "sshd": 1, "kernel_cmdline": 1, "config": 2}


@dataclass(frozen=True)
class Scenario:
    id: str
    script: str
    where: str          # file:line of a check-file row, or module::function of a Python control
    violating: tuple = ()    # (key, value) pairs `violating KEY` prints: values the baseline rejects


def violating_values(values):
    """(key, value) for every keyed setting of a baseline entry that has a value it rejects."""
    out = []
    for kind, depth in KEYED.items():
        settings = values.get(kind) or {}
        for key, spec in (settings.items() if depth == 1 else
                          [kv for per_source in settings.values() for kv in per_source.items()]):
            value = expect.violating(spec)
            if value is not None:
                out.append((str(key), value))
    return tuple(out)


def load_module(path):
    """A check module imported outside pytest (its functions carry their marks)."""
    spec = importlib.util.spec_from_file_location(f"golden_scenarios_{os.path.basename(path)[:-3]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python_controls(path):
    module = load_module(path)
    for name, fn in vars(module).items():
        for mark in getattr(fn, "pytestmark", []):
            if mark.name == "cis" and mark.args:
                yield mark.args[0], mark.kwargs.get("violate"), f"{path}::{name}"
            elif mark.name == "violate" and mark.args:       # an acceptance test's scenario
                yield f"acceptance:{name}", mark.args[0], f"{path}::{name}"


def acceptance(directory=ACCEPTANCE_DIR):
    """Scenarios of the functional acceptance tests: {"acceptance:<test name>": Scenario}."""
    found = {}
    for path in sorted(glob.glob(os.path.join(directory, "test_*.py"))):
        for key, violate, where in _python_controls(path):
            found[key] = Scenario(key, violate, where)
    return found


def collect(checks_dir=CHECKS_DIR, catalogue=None, baseline=None):
    catalogue = catalogue or Catalogue.load()
    baseline = baseline or Baseline.load(catalogue=catalogue)
    found = {}
    for path in sorted(glob.glob(os.path.join(checks_dir, "*.y*ml"))):
        if checkfile.is_check_file(path):
            for row in checkfile.load(path, catalogue, baseline):
                found[row.id] = Scenario(row.id, row.violate, f"{row.path}:{row.line}",
                                         violating_values(baseline.values(row.id)))
    for path in sorted(glob.glob(os.path.join(checks_dir, "test_*.py"))):
        for cis_id, violate, where in _python_controls(path):
            found[cis_id] = Scenario(cis_id, violate, where, violating_values(baseline.values(cis_id)))
    return found


def script(scenarios):
    """One shell script applying every scenario in its own `sh -e` (so any failing step counts),
    reporting each outcome on a marked line."""
    with open(PRELUDE, encoding="utf-8") as fh:
        prelude = fh.read()
    parts = ["cat > /run/golden-scenarios.sh <<'GOLDEN_PRELUDE'", prelude.rstrip("\n"), "GOLDEN_PRELUDE"]
    for s in scenarios:
        body = shlex.quote(f". /run/golden-scenarios.sh\n{s.script}")
        violating = shlex.quote("".join(f"{key} {value}\n" for key, value in s.violating))
        parts.append(
            f"if out=$(GOLDEN_SCENARIO={shlex.quote(s.id)} GOLDEN_VIOLATING={violating} sh -e -c {body} 2>&1); "
            f"then echo '{APPLY_MARK} ok {s.id}'; "
            f"else echo '{APPLY_MARK} failed {s.id}'; printf '%s\\n' \"$out\" | tail -n 5; fi")
    # The finishing step's systemctl calls (enable, is-enabled) get the checks' D-Bus timeout: a
    # timed-out is-enabled would withdraw a scenario that did take.
    parts.append(f"APPLY_MARK='{APPLY_MARK}' {BUS_TIMEOUT} sh -e -c '. /run/golden-scenarios.sh; scenarios_finish'; "
                 "rm -f /run/golden-scenarios.sh")
    return "\n".join(parts) + "\n"


def apply(runner, scenarios):
    """Apply scenarios; returns {id: output} for the scripts that did not succeed. A scenario whose
    script succeeded can still be withdrawn by the finishing step (a fake package that did not
    install, a unit that did not enable): its later `failed` line wins."""
    code, out, err = runner(script(scenarios))
    ok = set()
    for line in out.splitlines():
        if line.startswith(f"{APPLY_MARK} ok "):
            ok.add(line.split()[2])
        elif line.startswith(f"{APPLY_MARK} failed "):
            ok.discard(line.split()[2])
    return {s.id: out[-2000:] + err[-2000:] for s in scenarios if s.id not in ok}
