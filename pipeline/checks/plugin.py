"""The pytest plugin behind `pytest cis_checks acceptance`: check files become test items, every
control carries its CIS metadata into the JUnit, facts are gathered once per host, and
`--image` boots a candidate for the session.

Options: --image PATH, --role ROLE, --level 1|2, --controls GLOB[,GLOB], --baseline PATH.
Python controls are marked with `control()`:

    @control("7.2.2", violate="passwd -d nobody", needs=["shadow"])
    def test_shadow_password_fields_not_empty(facts): ...
"""

import fcntl
import fnmatch
import hashlib
import json
import os
import shlex
import shutil
import tempfile

import pytest
import testinfra

from .. import boot, seed
from ..errors import GoldenError
from . import checkfile, exceptions, scenarios
from .baseline import Baseline
from .catalogue import Catalogue, id_key
from .facts import Facts, Request
from .kinds import KINDS

STATE = pytest.StashKey()
WAIVER = pytest.StashKey()


def control(cis_id, *, violate, needs=(), services=()):
    """Mark a Python test as the check of one CIS recommendation. `needs` lists fact sections: a
    name, a (name, parameter...) tuple, or a function of the control's baseline values returning
    such entries (for parameters the baseline holds, e.g. a unit name)."""
    return pytest.mark.cis(cis_id, violate=violate, needs=tuple(needs), services=tuple(services))


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
    if findings:
        raise ControlFailed(list(findings))


class ControlFailed(AssertionError):
    def __init__(self, findings):
        super().__init__("\n".join(findings))
        self.findings = findings


class State:
    def __init__(self, config):
        self.config = config
        opt = config.option
        self.catalogue = Catalogue.load()
        self.baseline = Baseline.load(opt.golden_baseline or os.path.join(
            os.path.dirname(self.catalogue.path), "baseline.yaml"), self.catalogue)
        if opt.golden_role not in self.baseline.roles:
            raise pytest.UsageError(f"--role {opt.golden_role!r} is not a role of {self.baseline.path} "
                                    f"(known: {', '.join(self.baseline.roles)})")
        self.role = opt.golden_role
        self.level = opt.golden_level or self.baseline.level_for(self.role)
        self.controls = [g.strip() for g in (opt.golden_controls or "").split(",") if g.strip()]
        self.image_name = opt.golden_image_name
        self.as_of = exceptions.parse_date(opt.golden_as_of, "--as-of") if opt.golden_as_of else exceptions.utc_today()
        from ..spec import known_images
        paths = [p for p in (opt.golden_exceptions or exceptions.DEFAULT_DIR).split(",") if p]
        self.exceptions = exceptions.load(paths, self.baseline, known_images(baseline=self.baseline), today=self.as_of)
        self.defined = {}                  # cis id -> where its check is defined
        self.request = Request()
        self.facts = {}                    # host id -> Facts
        self.shared_dir = None             # where xdist workers share fact collections (controller)
        self.hosts = {}

    def define(self, cis_id, where):
        if cis_id in self.defined and self.defined[cis_id] != where:
            raise GoldenError(f"duplicate check for CIS {cis_id}: also defined at {self.defined[cis_id]}",
                              file=where)
        self.defined[cis_id] = where

    def selected(self, cis_id):
        if not self.baseline.applies(cis_id, self.role, self.level):
            return False
        return not self.controls or any(fnmatch.fnmatchcase(cis_id, g) for g in self.controls)

    def host(self, config, spec):
        if spec not in self.hosts:
            opt = config.option
            self.hosts[spec] = testinfra.get_host(
                spec, connection=opt.connection, ssh_config=opt.ssh_config, ssh_identity_file=opt.ssh_identity_file,
                sudo=opt.sudo, sudo_user=opt.sudo_user, ansible_inventory=opt.ansible_inventory,
                force_ansible=opt.force_ansible)
        return self.hosts[spec]

    def facts_for(self, host):
        key = host.backend.get_pytest_id()
        if key not in self.facts:
            self.facts[key] = Facts.parse(self._gather(host, key))
        return self.facts[key]

    def _gather(self, host, key):
        """The collector's output for this host. Under xdist the workers share one collection: the
        first to ask runs it while the others wait on the lock, then read its output."""
        script = self.request.script()
        shared = getattr(self.config, "workerinput", {}).get("golden_facts_dir")
        if not shared:
            return self._collect(host, key, script)
        name = hashlib.sha256(f"{key}\0{script}".encode()).hexdigest()[:24]
        path = os.path.join(shared, name)
        with open(path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.path.exists(path):
                with open(path, encoding="utf-8") as fh:
                    return fh.read()
            out = self._collect(host, key, script)
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(out)
            os.replace(path + ".tmp", path)
            return out

    @staticmethod
    def _collect(host, key, script):
        result = host.run(script)
        if result.rc == 255 or not result.stdout.strip():
            raise GoldenError(f"fact collection failed on {key} (exit {result.rc}): {result.stderr.strip()[:500]}")
        return result.stdout


def pytest_addoption(parser):
    group = parser.getgroup("golden", "golden image acceptance")
    group.addoption("--image", dest="golden_image", metavar="PATH",
                    help="boot this qcow2 (ephemeral overlay) for the session and test it")
    group.addoption("--role", dest="golden_role", default="general-purpose",
                    help="image role; picks the CIS level and the adopted controls (default: general-purpose)")
    group.addoption("--level", dest="golden_level", type=int, choices=(1, 2),
                    help="CIS level to check (2 includes 1); default: the role's level")
    group.addoption("--controls", dest="golden_controls", metavar="GLOBS",
                    help="only these CIS ids, comma-separated globs such as 5.1.*")
    group.addoption("--baseline", dest="golden_baseline", metavar="PATH", help="company baseline YAML")
    group.addoption("--exceptions", dest="golden_exceptions", metavar="PATHS",
                    help="exception files or directories, comma-separated (default: cis_checks/exceptions)")
    group.addoption("--image-name", dest="golden_image_name", metavar="NAME",
                    help="the image's spec name, for exceptions scoped to images")
    group.addoption("--as-of", dest="golden_as_of", metavar="YYYY-MM-DD",
                    help="evaluate exception expiry on this UTC day (default: today)")
    group.addoption("--boot-dir", dest="golden_boot_dir", metavar="DIR",
                    help="where --image keeps its console log and keys (default: a temporary directory)")
    group.addoption("--spec", dest="golden_spec", metavar="PATH",
                    help="the image spec the acceptance tests read (agents, time servers, allowlists); "
                         "default: images/golden-linux.yaml")
    group.addoption("--artifact", dest="golden_artifact", metavar="PATH",
                    help="the image file the hygiene tests inspect read-only (default: --image)")
    group.addoption("--violate", dest="golden_violate", metavar="GLOBS",
                    help="with --image only: first apply the violation scenarios of these controls "
                         "(comma-separated globs; acceptance tests' as acceptance:TEST; !GLOB leaves out) "
                         "to the booted overlay, to see their checks fail")


def pytest_configure(config):
    config.addinivalue_line("markers", "cis(id, violate, needs, services): the check of a CIS recommendation")
    config.addinivalue_line("markers", "level1: a CIS Level 1 control")
    config.addinivalue_line("markers", "violate(script): the scenario that must make an acceptance test fail")
    config.addinivalue_line("markers", "hygiene: inspects the artifact itself, read-only, before any boot")
    config.addinivalue_line("markers", "level2: a CIS Level 2 (only) control")
    for name in sorted({s for k in KINDS.values() for s in k.services} | {"sshd", "auditd", "pam", "network",
                                                                         "cron", "logging", "time", "accounts",
                                                                         "firewall", "boot", "apparmor"}):
        config.addinivalue_line("markers", f"{name}: controls touching {name}")
    try:
        config.stash[STATE] = State(config)
    except GoldenError as exc:
        raise pytest.UsageError(str(exc)) from None
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        if workerinput.get("golden_hosts"):
            config.option.hosts = workerinput["golden_hosts"]
            config.option.sudo = True
        return
    if config.option.golden_violate and not config.option.golden_image:
        raise pytest.UsageError("--violate breaks the system under test; it needs --image (a throwaway overlay)")
    if config.option.golden_image:
        cand = _boot_for_session(config)
        if config.option.golden_violate:
            _violate(config, cand)


def _boot_for_session(config):
    workdir = config.option.golden_boot_dir or tempfile.mkdtemp(prefix="golden-boot-")
    cache = os.environ.get("GOLDEN_CACHE", os.path.expanduser("~/.cache/golden"))
    ctx = boot.booted(config.option.golden_image, workdir, cache_dir=cache,
                      log=lambda m: print(f"[boot] {m}", flush=True))
    try:
        cand = ctx.__enter__()
    except GoldenError as exc:
        raise pytest.UsageError(f"--image: {exc}") from None
    config.option.hosts = cand.hostspec
    config.option.sudo = True
    config.add_cleanup(lambda: ctx.__exit__(None, None, None))
    return cand


def _violate(config, cand):
    """Apply the selected controls' violation scenarios to the booted overlay, and record which."""
    state = config.stash[STATE]
    globs = [g.strip() for g in config.option.golden_violate.split(",") if g.strip()]
    wanted = [g for g in globs if not g.startswith("!")]
    unwanted = [g[1:] for g in globs if g.startswith("!")]

    def picked(key):
        return (any(fnmatch.fnmatchcase(key, g) for g in wanted)
                and not any(fnmatch.fnmatchcase(key, g) for g in unwanted))

    known = scenarios.collect()
    chosen = [s for cis_id, s in sorted(known.items(), key=lambda kv: id_key(kv[0]))
              if state.selected(cis_id) and picked(cis_id)]
    chosen += [s for key, s in sorted(scenarios.acceptance().items()) if picked(key)]
    print(f"[violate] applying {len(chosen)} violation scenarios", flush=True)
    failed = scenarios.apply(lambda script: cand.vm.run(f"sudo sh -c {shlex.quote(script)}", check=False), chosen)
    record = {"applied": [s.id for s in chosen if s.id not in failed], "failed_to_apply": failed}
    with open(os.path.join(os.path.dirname(cand.ssh_config), "violations.json"), "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)
    if failed:
        raise pytest.UsageError("violation scenarios did not apply: " + "; ".join(
            f"{i}: {out.strip()[-300:]}" for i, out in failed.items()))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput["golden_hosts"] = node.config.option.hosts if node.config.option.golden_image else None
    node.workerinput["golden_facts_dir"] = _shared_facts_dir(node.config)


def _shared_facts_dir(config):
    """A directory the xdist workers share their fact collections in, removed with the session."""
    state = config.stash[STATE]
    if state.shared_dir is None:
        state.shared_dir = tempfile.mkdtemp(prefix="golden-facts-")
        config.add_cleanup(lambda: shutil.rmtree(state.shared_dir, ignore_errors=True))
    return state.shared_dir


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
    """Python controls that end with require(findings) report like check-file rows: the findings."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and isinstance(call.excinfo.value, ControlFailed) and not isinstance(item, CheckItem):
        mark = _cis_mark(item)
        if mark and report.failed:
            report.longrepr = _describe_failure(item.config, mark.args[0], call.excinfo.value)


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


def _cis_mark(item):
    mark = item.get_closest_marker("cis")
    return mark if mark and mark.args else None


def pytest_collection_modifyitems(session, config, items):
    state = config.stash[STATE]
    keep, drop = [], []
    for item in items:
        mark = _cis_mark(item)
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
        exc = exceptions.covering(state.exceptions, cis_id, state.role, state.image_name)
        if exc is not None:
            item.stash[WAIVER] = exc
            item.user_properties += [(f"waiver_{k}", str(v)) for k, v in exc.record().items()
                                     if k in ("id", "why", "owner", "approved_by", "ticket", "expires", "mode") and v]
            if exc.mode == "skip":
                item.add_marker(pytest.mark.skip(reason=f"waived (not run) by {exc.id}: {exc.why} "
                                                        f"(owner {exc.owner}, expires {exc.expires})"))
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


@pytest.fixture
def facts(host, request):
    """The facts gathered once per host for every control of the session."""
    state = request.config.stash[STATE]
    return state.facts_for(host)


@pytest.fixture
def baseline(request):
    return request.config.stash[STATE].baseline


@pytest.fixture
def control_values(request):
    """The baseline values of the control this test checks."""
    mark = _cis_mark(request.node)
    return request.config.stash[STATE].baseline.values(mark.args[0]) if mark else {}


@pytest.fixture(scope="session")
def image_spec(request):
    """The image spec under test (--spec), for its agents, time servers and allowlists."""
    from ..spec import ImageSpec
    path = request.config.option.golden_spec or os.path.join(
        os.path.dirname(os.path.dirname(request.config.stash[STATE].catalogue.path)), "images", "golden-linux.yaml")
    return ImageSpec.load(path, request.config.stash[STATE].baseline)


@pytest.fixture(scope="session")
def artifact_root(request):
    """The artifact's root filesystem, mounted read-only, for the hygiene tests (--artifact or --image)."""
    from ..artifact import mounted_root
    path = request.config.option.golden_artifact or request.config.option.golden_image
    if not path:
        pytest.skip("hygiene tests inspect an image file: give --artifact PATH or --image PATH")
    with mounted_root(path) as root:
        yield root


def violates(script):
    """Mark an acceptance test with the scenario that must make it fail (applied by --violate)."""
    return pytest.mark.violate(script)


@pytest.fixture
def test_user():
    """The per-boot account the suite logs in with; checks of accounts exclude it by name."""
    return seed.TEST_USER
