import pytest

from pipeline.checks import expect


@pytest.mark.parametrize("actual,spec,ok", [
    ("4", 4, True), ("5", 4, False), ("no", False, True), ("yes", False, False), ("VERBOSE", "verbose", True),
    ("3", {"at_most": 4}, True), ("4", {"at_most": 4}, True), ("10", {"at_most": 4}, False), ("x", {"at_most": 4}, False),
    ("14", {"at_least": 14}, True), ("8", {"at_least": 14}, False),
    ("INFO", {"one_of": ["VERBOSE", "INFO"]}, True), ("QUIET", {"one_of": ["VERBOSE", "INFO"]}, False),
    ("aes128-ctr,aes256-ctr", {"subset_of": ["aes128-ctr", "aes256-ctr"]}, True),
    ("aes128-cbc,aes256-ctr", {"subset_of": ["aes128-ctr", "aes256-ctr"]}, False),
    ("", {"subset_of": ["a"]}, False),
    ("10:30:60", {"matches": r"\d+:\d+:\d+"}, True), ("10", {"matches": r"\d+:\d+:\d+"}, False),
    (None, 0, False),
])
def test_check(actual, spec, ok):
    assert expect.check(actual, spec) is ok


@pytest.mark.parametrize("spec,reason", [
    ({"at_most": "4"}, "at_most needs an integer"), ({"between": 1}, "unknown operator"),
    ({"one_of": []}, "one_of needs a non-empty list"), ({"at_most": 1, "at_least": 0}, "exactly one"),
    ({"matches": "("}, "valid regular expression"),
])
def test_validate_rejects(spec, reason):
    assert reason in expect.validate(spec)


def test_targets_are_what_hardening_writes():
    assert expect.target({"at_most": 4}) == "4"
    assert expect.target(False) == "no"
    assert expect.target({"subset_of": ["a", "b"]}) == "a,b"
    assert expect.target({"one_of": [1, 2]}) == "1"
    assert expect.target({"matches": "x"}) is None
