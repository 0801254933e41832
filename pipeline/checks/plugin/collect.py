"""Check files and the catalogue become test items. A check-file row is one item per host; a
recommendation with no check is a skipped item (so the JUnit lists the whole catalogue); every CIS
item carries its id, title, level, section and services into the JUnit, and adds the facts it
needs to the session's one fact request. A control that raises NotApplicable is skipped with a
reason "not applicable: ..." and the JUnit property outcome=not-applicable.
"""

import pytest

from pipeline.checks import checkfile, scenarios
from pipeline.checks.authoring import ControlFailed, add_needs, findings_for
from pipeline.checks.kinds import KINDS, NotApplicable
from pipeline.checks.plugin.session import STATE
from pipeline.errors import GoldenError


def pytest_collect_file(file_path, parent):
    state = parent.config.stash[STATE]
    if checkfile.is_check_file(file_path) and file_path.parent.name == "cis_checks":
        return CheckFile.from_parent(parent, path=file_path, state=state)
    if str(file_path) == state.catalogue.path:
        return CatalogueFile.from_parent(parent, path=file_path, state=state)
    return None


class CatalogueFile(pytest.File):
    """Recommendations with no check (manual ones, and automated ones not written yet) are reported
    as skipped tests, so the JUnit lists the whole catalogue and nothing is silently dropped."""

    def __init__(self, *, state, **kw):
        super().__init__(**kw)
        self.state = state

    def collect(self):
        defined = scenarios.collect(catalogue=self.state.catalogue, baseline=self.state.baseline)
        for rec in self.state.catalogue:
            if rec.id in defined:
                continue
            reason = ("manual: reviewed by hand, not tested" if rec.assessment == "manual"
                      else "not yet automated: no check written")
            yield UncheckedItem.from_parent(self, name=rec.id, cis_id=rec.id, reason=reason)


class UncheckedItem(pytest.Item):
    def __init__(self, *, cis_id, reason, **kw):
        super().__init__(**kw)
        self.cis_id = cis_id
        self.reason = reason
        self.add_marker(pytest.mark.cis(cis_id, violate=None, needs=(), services=()))

    def runtest(self):
        pytest.skip(self.reason)

    def reportinfo(self):
        return self.path, None, f"CIS {self.cis_id} ({self.reason.split(':')[0]})"


class CheckFile(pytest.File):
    def __init__(self, *, state, **kw):
        super().__init__(**kw)
        self.state = state

    def collect(self):
        rows = checkfile.load(self.path, self.state.catalogue, self.state.baseline)
        hosts = (self.config.option.hosts or "").split(",") if self.config.option.hosts else [None]
        for row in rows:
            self.state.define(row.id, f"{row.path}:{row.line}")
            for spec in hosts:
                name = row.id if len(hosts) == 1 else f"{row.id}[{spec}]"
                yield CheckItem.from_parent(self, name=name, row=row, hostspec=spec)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, GoldenError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class CheckItem(pytest.Item):
    def __init__(self, *, row, hostspec, **kw):
        super().__init__(**kw)
        self.row = row
        self.hostspec = hostspec
        self.cis_id = row.id
        self.add_marker(pytest.mark.cis(row.id, violate=row.violate, needs=(), services=row.services))

    def runtest(self):
        state = self.config.stash[STATE]
        facts = state.facts_for(state.host(self.config, self.hostspec))
        findings = findings_for(state.baseline.values(self.cis_id), facts)
        if findings:
            raise ControlFailed(findings)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ControlFailed):
            return _describe_failure(self.config, self.cis_id, excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.row.line - 1, f"CIS {self.cis_id}"


def _describe_failure(config, cis_id, failure):
    rec = config.stash[STATE].catalogue[cis_id]
    return f"CIS {rec.id} {rec.title}:\n" + "\n".join(f"  - {f}" for f in failure.findings)


@pytest.hookimpl(hookwrapper=True, tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_findings(item, call):
    """Python controls that end with require(findings) report like check-file rows: the findings.
    A control with nothing to judge is skipped as not applicable (neither passed nor failed)."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(NotApplicable):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), None, f"not applicable: {call.excinfo.value}")
        # The JUnit takes properties from the item (its teardown report), so they are set there.
        item.user_properties.append(("outcome", "not-applicable"))
    elif call.excinfo is not None and isinstance(call.excinfo.value, ControlFailed) and not isinstance(item, CheckItem):
        mark = cis_mark(item)
        if mark and report.failed:
            report.longrepr = _describe_failure(item.config, mark.args[0], call.excinfo.value)


def cis_mark(item):
    mark = item.get_closest_marker("cis")
    return mark if mark and mark.args else None


def pytest_collection_modifyitems(session, config, items):
    state = config.stash[STATE]
    keep, drop = [], []
    for item in items:
        mark = cis_mark(item)
        if mark is None:
            keep.append(item)
            continue
        cis_id = mark.args[0]
        if cis_id not in state.catalogue:
            raise pytest.UsageError(f"{item.nodeid}: unknown CIS id {cis_id!r} (not in the catalogue)")
        if not isinstance(item, (CheckItem, UncheckedItem)):
            state.define(cis_id, item.nodeid.split("[")[0])
        if not state.selected(cis_id):
            drop.append(item)
            continue
        rec = state.catalogue[cis_id]
        services = set(mark.kwargs.get("services") or ())
        for kind_name, value in state.baseline.values(cis_id).items():
            services.update(KINDS[kind_name].services_of(value))
        item.add_marker("level1" if rec.level == 1 else "level2")
        for s in sorted(services):
            item.add_marker(s)
        item.user_properties += [("cis_id", cis_id), ("title", rec.title), ("level", str(rec.level)),
                                 ("section", rec.section), ("services", ",".join(sorted(services)))]
        if isinstance(item, UncheckedItem):
            keep.append(item)
            continue
        for kind_name, value in state.baseline.values(cis_id).items():
            KINDS[kind_name].needs(value, state.request)
        add_needs(state.request, mark.kwargs.get("needs"), state.baseline.values(cis_id))
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
