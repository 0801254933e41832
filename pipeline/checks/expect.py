"""Expected values as the baseline writes them, and how an actual value is judged against them.

A plain value means "equal to". A mapping with one operator says more:

    at_most: 4          numeric upper bound          (MaxAuthTries at most 4)
    at_least: 14        numeric lower bound          (minlen at least 14)
    one_of: [a, b]      any of these values
    subset_of: [x, y]   every item of a comma/space separated actual value is allowed (cipher lists)
    matches: REGEX      the actual value matches (Python re.fullmatch)
    present: true|false a flag that must be set (with or without a value) or must not be

`target()` is the value the hardening writes: the value itself, the bound, the first choice,
or the allowed list joined by commas. `violating()` is a value a violation scenario writes: the
bound plus (or minus) one, one above a list of numbers, the other of yes/no.
"""

import re

OPERATORS = ("at_most", "at_least", "one_of", "subset_of", "matches", "present")


def normalize(value):
    """YAML reads yes/no as booleans; configuration files mean the words."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def validate(spec):
    """None if `spec` is a well-formed expectation, else the reason it is not."""
    if isinstance(spec, (str, int, bool, float)):
        return None
    if not isinstance(spec, dict) or len(spec) != 1:
        return "must be a value or a mapping with exactly one of " + ", ".join(OPERATORS)
    (op, arg), = spec.items()
    if op not in OPERATORS:
        return f"unknown operator {op!r} (allowed: {', '.join(OPERATORS)})"
    if op in ("at_most", "at_least") and (isinstance(arg, bool) or not isinstance(arg, int)):
        return f"{op} needs an integer, not {arg!r}"
    if op in ("one_of", "subset_of") and not (isinstance(arg, list) and arg):
        return f"{op} needs a non-empty list"
    if op == "present" and not isinstance(arg, bool):
        return "present needs true or false"
    if op == "matches":
        try:
            re.compile(str(arg))
        except re.error as exc:
            return f"matches needs a valid regular expression: {exc}"
    return None


def _int(text):
    try:
        return int(str(text).strip(), 0)
    except ValueError:
        return None


def check(actual, spec):
    """True if the actual value (a string, or None if absent) satisfies the expectation."""
    if isinstance(spec, dict) and "present" in spec:
        return (actual is not None) == spec["present"]
    if actual is None:
        return False
    actual = str(actual).strip()
    if not isinstance(spec, dict):
        want = normalize(spec)
        if _int(actual) is not None and _int(want) is not None:
            return _int(actual) == _int(want)
        return actual.lower() == want.lower()
    (op, arg), = spec.items()
    if op in ("at_most", "at_least"):
        value = _int(actual)
        return value is not None and (value <= arg if op == "at_most" else value >= arg)
    if op == "one_of":
        return any(check(actual, choice) for choice in arg)
    if op == "subset_of":
        allowed = {normalize(a).lower() for a in arg}
        items = [i for i in re.split(r"[,\s]+", actual.lower()) if i]
        return bool(items) and all(i in allowed for i in items)
    return re.fullmatch(str(arg), actual) is not None


def describe(spec):
    if not isinstance(spec, dict):
        return normalize(spec)
    (op, arg), = spec.items()
    if op == "present":
        return "set" if arg else "not set"
    if isinstance(arg, list):
        arg = ",".join(normalize(a) for a in arg)
    return f"{op.replace('_', ' ')} {arg}"


def target(spec):
    if not isinstance(spec, dict):
        return normalize(spec)
    (op, arg), = spec.items()
    if op in ("at_most", "at_least"):
        return str(arg)
    if op == "one_of":
        return normalize(arg[0])
    if op == "subset_of":
        return ",".join(normalize(a) for a in arg)
    if op == "present":
        return "@present" if arg else "@absent"   # hardening: write the bare flag / remove the key
    return None


def violating(spec):
    """A value `spec` rejects, derived from it (None where no valid one follows from it: the
    neighbour of a plain number, say, may be a value the program refuses). A one_of of numbers
    only is a range written out: one above its largest.

        violating({"at_most": 4}) == "5";  violating({"one_of": [5, 4, 3, 2, 1]}) == "6";  violating(True) == "no"
    """
    if isinstance(spec, dict):
        (op, arg), = spec.items()
        if op == "one_of" and all(isinstance(a, int) and not isinstance(a, bool) for a in arg):
            return str(max(arg) + 1)
        return str(arg + 1) if op == "at_most" else str(arg - 1) if op == "at_least" else None
    return {"yes": "no", "no": "yes"}.get(normalize(spec).lower())
