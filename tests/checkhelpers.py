"""Helpers for the unit tests of CIS controls: a check module loaded like the scenario tooling
loads it, facts in the collector's own output format, and the findings a control raises."""

import inspect
import os

from pipeline.checks.authoring import ControlFailed
from pipeline.checks.facts import MARK, Facts
from pipeline.checks.scenarios import load_module
from pipeline.paths import CHECKS_DIR


def check_module(name):
    """cis_checks/<name>.py, imported outside pytest."""
    return load_module(os.path.join(CHECKS_DIR, name if name.endswith(".py") else f"{name}.py"))


def facts(**sections):
    """Facts from section texts; `config__sshd` stands for the section `config:sshd`."""
    return Facts.parse("".join(f"{MARK} {name.replace('__', ':')}\n{text}\n" for name, text in sections.items()))


def findings(control, *args, **kwargs):
    """What a control found wrong (empty: it passed). A `control_values=` keyword reaches only the
    controls that take it, so a table of controls can be called alike, each with its baseline values."""
    if "control_values" in kwargs and "control_values" not in inspect.signature(control).parameters:
        del kwargs["control_values"]
    try:
        control(*args, **kwargs)
    except ControlFailed as failed:
        return failed.findings
    return []
