"""What a check file imports: how a Python control is marked, ended and composed from the baseline's
data kinds, and how an acceptance test names the scenario that must make it fail.

    from pipeline.checks.authoring import control, require

    @control("7.2.2", violate="passwd -d nobody", needs=["shadow"])
    def test_shadow_password_fields_not_empty(facts):
        require(f"{row[0]} has an empty password" for row in facts.shadow if row[1] == "")
"""

import pytest

from pipeline.checks.kinds import KINDS


def control(cis_id, *, violate, needs=(), services=()):
    """Mark a Python test as the check of one CIS recommendation. `needs` lists fact sections: a
    name, a (name, parameter...) tuple, or a function of the control's baseline values returning
    such entries (for parameters the baseline holds, e.g. a unit name)."""
    return pytest.mark.cis(cis_id, violate=violate, needs=tuple(needs), services=tuple(services))


def violates(script):
    """Mark an acceptance test with the scenario that must make it fail (applied by --violate)."""
    return pytest.mark.violate(script)


def add_needs(request, needs, values):
    """Add a control's `needs` (see `control`) to a fact request."""
    for section in needs or ():
        if callable(section):
            add_needs(request, section(values), values)
        elif isinstance(section, tuple):
            request.add(*section)
        else:
            request.add(section)


def findings_for(values, facts):
    """What the data kinds of a baseline entry find wrong in the facts (empty: compliant)."""
    findings = []
    for kind_name, value in values.items():
        findings += KINDS[kind_name].evaluate(value, facts)
    return findings


def require(findings):
    """End a Python control: fail with every finding listed, or pass if there is none."""
    findings = list(findings)
    if findings:
        raise ControlFailed(findings)


class ControlFailed(AssertionError):
    def __init__(self, findings):
        super().__init__("\n".join(findings))
        self.findings = findings
