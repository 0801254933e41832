"""The suite's own ordering (tests/conftest.py): under two workers the guests' tests are one unit, handed out
first; alone they go last; and a test that boots a guest outside GUEST_MODULES is refused at collection."""

import collections
import types

import pytest

from .conftest import GUEST_MODULES, GUESTS, guests_first, pytest_collection_modifyitems, scope_of


def _item(nodeid, *marks):
    return types.SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: name if name in marks else None)


def test_the_guests_tests_go_last_in_their_order():
    items = [_item(f"{GUEST_MODULES[0]}::test_b", "e2e"), _item("tests/test_due.py::test_x"),
             _item(f"{GUEST_MODULES[2]}::test_c", "vm"), _item("tests/test_spec.py::test_y")]
    pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == ["tests/test_due.py::test_x", "tests/test_spec.py::test_y",
                                         f"{GUEST_MODULES[0]}::test_b", f"{GUEST_MODULES[2]}::test_c"]


def test_the_guests_unit_is_handed_out_first_and_the_rest_keep_their_order():
    nodeids = ["tests/test_due.py::test_x", "tests/test_spec.py::test_y", f"{GUEST_MODULES[0]}::test_b",
               f"{GUEST_MODULES[0]}::test_d", f"{GUEST_MODULES[2]}::test_c"]
    queue = collections.OrderedDict()
    for nodeid in nodeids:
        queue.setdefault(scope_of(nodeid), {})[nodeid] = False
    assert list(guests_first(queue)) == [GUESTS, "tests/test_due.py::test_x", "tests/test_spec.py::test_y"]
    assert list(queue[GUESTS]) == nodeids[2:]
    assert list(guests_first(queue)) == [GUESTS, "tests/test_due.py::test_x", "tests/test_spec.py::test_y"]
    queue.popitem(last=False)
    assert list(guests_first(queue)) == ["tests/test_due.py::test_x", "tests/test_spec.py::test_y"]


def test_a_guest_booting_test_outside_the_guest_modules_is_refused():
    items = [_item("tests/test_due.py::test_x"), _item("tests/test_new_boot.py::test_z", "vm")]
    with pytest.raises(pytest.UsageError, match="tests/test_new_boot.py boot guests .* not in GUEST_MODULES"):
        pytest_collection_modifyitems(items)
