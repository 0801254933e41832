"""JUnit XML as the gate, the report and the attestations read it.

    cases = parse_junit("runs/<v>/junit.xml")     # [{name, classname, status, message, properties, time}]
    # status: passed, failed, error, skipped, waived
"""

import xml.etree.ElementTree as ET


class JUnitError(Exception):
    pass


def parse_junit(path):
    """Test cases of a JUnit XML file: list of dicts (name, classname, status, message, properties)."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise JUnitError(f"{path}: no JUnit file") from None
    except ET.ParseError as exc:
        raise JUnitError(f"{path}: malformed JUnit XML ({exc})") from None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite") if root.tag == "testsuites" else None
    if suites is None:
        raise JUnitError(f"{path}: root element is <{root.tag}>, not <testsuites> or <testsuite>")
    cases = []
    for suite in suites:
        for case in suite.iter("testcase"):
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            status, message = "passed", ""
            for tag in ("error", "failure", "skipped"):
                el = case.find(tag)
                if el is not None:
                    status = {"error": "error", "failure": "failed", "skipped": "skipped"}[tag]
                    message = (el.get("message") or "") + ("\n" + el.text if el.text else "")
                    break
            if status == "skipped" and props.get("outcome") == "waived":
                status = "waived"
            cases.append({"name": case.get("name", ""), "classname": case.get("classname", ""),
                          "status": status, "message": message.strip()[:2000], "properties": props,
                          "time": float(case.get("time") or 0)})
        for attr in ("errors", "failures"):
            declared = int(suite.get(attr) or 0)
            counted = sum(1 for c in cases if c["status"] == ("error" if attr == "errors" else "failed"))
            if declared > counted:   # a suite-level error with no test case to carry it
                cases.append({"name": f"<{suite.get('name', 'suite')} {attr}>", "classname": "", "status":
                              "error", "message": f"suite declares {declared} {attr}", "properties": {}, "time": 0})
    return cases
