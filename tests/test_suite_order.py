"""The suite's own ordering under two workers (tests/conftest.py): the guests' tests go last, and a test that
boots a guest outside GUEST_MODULES is refused at collection."""

import types

import pytest

from .conftest import GUEST_MODULES, pytest_collection_modifyitems


def _item(nodeid, *marks):
    return types.SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: name if name in marks else None)


def test_the_guests_tests_go_last_in_their_order():
    items = [_item(f"{GUEST_MODULES[0]}::test_b", "e2e"), _item("tests/test_due.py::test_x"),
             _item(f"{GUEST_MODULES[2]}::test_c", "vm"), _item("tests/test_spec.py::test_y")]
    pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == ["tests/test_due.py::test_x", "tests/test_spec.py::test_y",
                                         f"{GUEST_MODULES[0]}::test_b", f"{GUEST_MODULES[2]}::test_c"]


def test_a_guest_booting_test_outside_the_guest_modules_is_refused():
    items = [_item("tests/test_due.py::test_x"), _item("tests/test_new_boot.py::test_z", "vm")]
    with pytest.raises(pytest.UsageError, match="tests/test_new_boot.py boot guests .* not in GUEST_MODULES"):
        pytest_collection_modifyitems(items)
