"""Waivers: a failed control covered by an unexpired exception is reported as waived (skipped in
the JUnit, with the exception's why, owner, ticket and expiry); crashes are never waived, and an
exception in `skip` mode does not run its control at all.
"""

import pytest

from pipeline.checks import exceptions
from pipeline.checks.plugin.collect import cis_mark
from pipeline.checks.plugin.session import STATE

WAIVER = pytest.StashKey()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """Attach to each selected control the exception that covers it, if any."""
    state = config.stash[STATE]
    for item in items:
        mark = cis_mark(item)
        if mark is None:
            continue
        exc = exceptions.matching(state.exceptions, mark.args[0], state.role, state.image_name)
        if exc is None:
            continue
        item.stash[WAIVER] = exc
        item.user_properties += [(f"waiver_{k}", str(v)) for k, v in exc.record().items()
                                 if k in ("id", "why", "owner", "approved_by", "ticket", "expires", "mode") and v]
        if exc.mode == "skip":
            item.add_marker(pytest.mark.skip(reason=f"waived (not run) by {exc.id}: {exc.why} "
                                                    f"(owner {exc.owner}, expires {exc.expires})"))


@pytest.hookimpl(hookwrapper=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_waivers(item, call):
    """A failed control covered by an unexpired exception is reported as waived: skipped in the
    JUnit, with the exception's why, owner, ticket and expiry. Crashes are never waived."""
    outcome = yield
    report = outcome.get_result()
    exc = item.stash.get(WAIVER, None)
    if exc is None or report.when != "call":
        return
    as_of = item.config.stash[STATE].as_of
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(AssertionError):
        # The JUnit takes properties from the item (its teardown report), so they are set there.
        if exc.expired(as_of):
            item.user_properties.append(("waiver_expired", exc.expires.isoformat()))
            return
        first = str(call.excinfo.value).strip().splitlines()
        report.outcome = "skipped"
        report.longrepr = (str(item.path), None, f"WAIVED by {exc.id} (owner {exc.owner}, expires {exc.expires}, "
                                                 f"ticket {exc.ticket or '-'}): {exc.why} | check found: "
                                                 + " ".join(first[:4]))
        item.user_properties.append(("outcome", "waived"))
    elif report.passed:
        item.user_properties.append(("waiver_unused", "the control passed"))
