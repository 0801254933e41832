"""JUnit XML as the gate, the report and the attestations read it.

    cases = parse_junit("runs/<v>/junit.xml")     # [{name, classname, status, message, properties, time}]
    junit = read_junit("runs/<v>/junit.xml")      # .cases, .properties (the suite's), .problems
    # status: passed, failed, error, skipped, waived, not-applicable
"""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

# A skipped case whose `outcome` property says so is not a plain skip (the plugin's waivers, and
# checks of something the candidate does not have).
OUTCOMES = ("waived", "not-applicable")
DECLARED = {"tests": None, "failures": "failure", "errors": "error", "skipped": "skipped"}


class JUnitError(Exception):
    pass


@dataclass
class JUnit:
    cases: list
    properties: dict        # testsuite-level properties (the attempt id)
    problems: list          # declared counts that disagree with the cases, nameless cases


def junit_name(nodeid):
    """(classname, name) pytest's xunit1 JUnit gives a node id: the file path dotted, `.py` dropped,
    as _pytest.junitxml.mangle_test_address does."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def parse_junit(path):
    """Test cases of a JUnit XML file: list of dicts (name, classname, status, message, properties)."""
    return read_junit(path).cases


def read_junit(path):
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise JUnitError(f"{path}: no JUnit file") from None
    except ET.ParseError as exc:
        raise JUnitError(f"{path}: malformed JUnit XML ({exc})") from None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite") if root.tag == "testsuites" else None
    if suites is None:
        raise JUnitError(f"{path}: root element is <{root.tag}>, not <testsuites> or <testsuite>")
    cases, properties, problems = [], {}, []
    for suite in suites:
        properties.update({p.get("name"): p.get("value") for p in suite.findall("properties/property")})
        elements = suite.findall("testcase")
        suite_cases = [_case(el) for el in elements]
        where = f"{path}: testsuite {suite.get('name', '?')!r}"
        for attr, tag in DECLARED.items():
            declared = suite.get(attr)
            counted = len(elements) if tag is None else sum(1 for el in elements if el.find(tag) is not None)
            if declared is None or not declared.isdigit():
                problems.append(f"{where} declares no {attr} count")
            elif int(declared) != counted:
                problems.append(f"{where} declares {attr}={declared} but holds {counted}")
        problems += [f"{where}: a test case with no name (classname {c['classname']!r})"
                     for c in suite_cases if not c["name"]]
        for attr in ("errors", "failures"):
            declared = int(suite.get(attr)) if (suite.get(attr) or "").isdigit() else 0
            counted = sum(1 for c in suite_cases if c["status"] == ("error" if attr == "errors" else "failed"))
            if declared > counted:   # a suite-level error with no test case to carry it
                suite_cases.append({"name": f"<{suite.get('name', 'suite')} {attr}>", "classname": "", "status":
                                    "error", "message": f"suite declares {declared} {attr}", "properties": {},
                                    "time": 0})
        cases += suite_cases
    return JUnit(cases, properties, problems)


def _case(case):
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    status, message = "passed", ""
    for tag in ("error", "failure", "skipped"):
        el = case.find(tag)
        if el is not None:
            status = {"error": "error", "failure": "failed", "skipped": "skipped"}[tag]
            message = (el.get("message") or "") + ("\n" + el.text if el.text else "")
            break
    if status == "skipped" and props.get("outcome") in OUTCOMES:
        status = props["outcome"]
    return {"name": case.get("name", ""), "classname": case.get("classname", ""), "status": status,
            "message": message.strip()[:2000], "properties": props, "time": float(case.get("time") or 0)}
