"""Fixtures for the project's own tests. End-to-end tests share one `golden run` of the default
spec per session (the base image is cached in GOLDEN_CACHE, so only the first session builds it)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from pipeline.paths import ROOT


# The README's command runs two workers (`-n 2 --dist loadgroup`). Every test that builds or boots a guest (all
# of them in GUEST_MODULES) is one unit of work, handed out first, to one worker, which runs it in order: the
# session's builds are made once, and guests boot one after another. The other worker meanwhile runs the
# tests that boot nothing, next to the default build (a build's guest leaves about a core idle); they were
# about 725 s of one core. (xdist's own `xdist_group` mark does nothing under pytest 9: it rewrites an
# attribute pytest no longer reads, hence a scheduler of the project's own.) Alone, without workers, the
# guests' tests go last.
GUEST_MODULES = ("tests/test_e2e.py", "tests/test_e2e_fleet.py", "tests/test_kpi_drift_live.py")
GUESTS = "guests"


def _module(nodeid):
    return nodeid.split("::")[0]


def scope_of(nodeid):
    """The unit of work a test belongs to: GUESTS for the guests' tests, else the test alone."""
    return GUESTS if _module(nodeid) in GUEST_MODULES else nodeid


def guests_first(workqueue):
    """Move the guests' unit to the front of an xdist work queue (an OrderedDict of scope -> tests)."""
    if GUESTS in workqueue:
        workqueue.move_to_end(GUESTS, last=False)
    return workqueue


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling
    config.option.loadscopereorder = False         # keep the collection's order but for the guests' unit

    class GuestsFirstOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return scope_of(nodeid)

        def _assign_work_unit(self, node):        # the first unit handed out is the guests'
            guests_first(self.workqueue)
            super()._assign_work_unit(node)
    return GuestsFirstOnOneWorker(config, log)


def pytest_collection_modifyitems(items):
    """The guests' tests go last. A test that builds or boots a guest outside GUEST_MODULES would, under two
    workers, build the session's images twice and boot guests on both: refused."""
    stray = sorted({_module(item.nodeid) for item in items
                    if (item.get_closest_marker("e2e") or item.get_closest_marker("vm"))
                    and _module(item.nodeid) not in GUEST_MODULES})
    if stray:
        raise pytest.UsageError(f"tests/conftest.py: {', '.join(stray)} boot guests (marked e2e or vm) but are "
                                "not in GUEST_MODULES, which keeps every such test on one worker: add them there")
    items.sort(key=lambda item: _module(item.nodeid) in GUEST_MODULES)


def golden(*args, dirs, timeout=3600):
    """Run the real `golden` command; returns the CompletedProcess (stdout: JSON summary)."""
    cmd = [sys.executable, "-m", "pipeline.cli", *args, "--runs-dir", str(dirs["runs"]), "--store",
           str(dirs["store"]), "--cache", str(dirs["cache"])]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def variant_spec(name, source="golden-linux.yaml", **changes):
    """A spec layered on one of images/ (`extends:`), under another name, with its changes on top
    (`base!` replaces the inherited base: a variant built on a published image)."""
    return {"extends": os.path.join(ROOT, "images", source), "name": name, **changes}


# GOLDEN_E2E_REUSE=DIR: a developer's shortcut, never CI's. The end-to-end tests work in DIR (an e2e root
# an earlier session left: runs/, store/, fleets/) and take from its store, instead of building them, the
# default and web images (the newest built from images/ itself) and the fleet tests' bad web versions
# (the newest built from web-limit-req.yaml and web-slow.yaml), where it has them.
REUSE = os.environ.get("GOLDEN_E2E_REUSE")


@pytest.fixture(scope="session")
def e2e_dirs(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests build images: run them as root (./setup.sh pytest tests)")
    root = pathlib.Path(REUSE).resolve() if REUSE else tmp_path_factory.mktemp("e2e")
    cache = os.environ.get("GOLDEN_CACHE", os.path.expanduser("~/.cache/golden"))
    return {"runs": root / "runs", "store": root / "store", "cache": cache, "root": root}


def _reused(dirs, image, spec=None, required=True):
    """(version, path, sha256) of the newest published version of IMAGE in a reused store that was built
    from the spec file named SPEC (default images/golden-IMAGE.yaml itself, not a test's variant of it)."""
    from pipeline.store.version import Version
    spec = spec or f"golden-{image}.yaml"

    def built_from(version):
        try:
            run = json.load(open(dirs["store"] / "images" / version / "run.json"))
        except (OSError, ValueError):
            return False
        return os.path.basename(run.get("spec") or "") == spec
    entries = [e for v, e in json.load(open(dirs["store"] / "index.json"))["images"].items()
               if Version.parse(v).name == image and built_from(v)]
    if not entries:
        if not required:
            return None
        pytest.fail(f"GOLDEN_E2E_REUSE={REUSE}: its store has no published {image} image built from {spec}")
    e = max(entries, key=lambda e: Version.sort_key(e["version"]))
    return e["version"], str(dirs["store"] / e["file"]), e["sha256"]


def start_spec(dirs, spec=None, log="golden-run.stderr", *extra):
    """`golden run` (of SPEC, else the default spec) started in the background, its stderr going to
    LOG in the e2e root; finish it with finish_spec. Runs of one image at once are safe: each
    allocates its version with an exclusive mkdir."""
    cmd = [sys.executable, "-m", "pipeline.cli", "run", *(["--spec", str(spec)] if spec else []), *extra,
           "--runs-dir", str(dirs["runs"]), "--store", str(dirs["store"]), "--cache", str(dirs["cache"])]
    err = open(dirs["root"] / log, "w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    return proc, err, spec


def finish_spec(started, timeout=3600):
    """Wait for a start_spec run: {"exit", "summary", "stderr"}."""
    proc, err, spec = started
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    err.seek(0)
    stderr = err.read()
    err.close()
    try:
        summary = json.loads(out)
    except ValueError:
        pytest.fail(f"golden run {spec or ''} printed no summary (exit {proc.returncode}):\n{stderr[-4000:]}")
    return {"exit": proc.returncode, "summary": summary, "stderr": stderr}


def run_spec(dirs, spec=None, log="golden-run.stderr", *extra):
    """`golden run` (of SPEC, else the default spec) with its stderr kept in the e2e root:
    {"exit", "summary", "stderr"}."""
    return finish_spec(start_spec(dirs, spec, log, *extra))


def published_entry(run, dirs):
    """(version, path, sha256) of a run that must have published."""
    if run["exit"] != 0:
        pytest.fail("the spec was not published:\n" + json.dumps(run["summary"], indent=2))
    entry = json.load(open(dirs["store"] / "index.json"))["images"][run["summary"]["version"]]
    return entry["version"], str(dirs["store"] / entry["file"]), entry["sha256"]


@pytest.fixture(scope="session")
def default_run(e2e_dirs):
    """`golden run` on images/golden-linux.yaml, end to end."""
    return run_spec(e2e_dirs)


@pytest.fixture(scope="session")
def published(request, e2e_dirs):
    """The default spec's published image: (version, path, sha256)."""
    if REUSE:
        return _reused(e2e_dirs, "linux")
    return published_entry(request.getfixturevalue("default_run"), e2e_dirs)


@pytest.fixture(scope="session")
def layered(published, e2e_dirs, request, tmp_path_factory):
    """The builds on the published default image that this session's tests need, started together: the
    web spec, two bad web versions for the rollouts, a variant that breaks CIS 5.1.16, the bastion spec's
    emergency rebuild. A build's guest is mostly single-threaded (the host was a third idle during one
    build alone), so three at once took about four fifths of one after another (777 s against 944 s).
    All of them finish before any test goes on: no test shares the cores with a build."""
    wanted = {f for item in request.session.items if not _skipped(item) for f in item.fixturenames}
    reused = {}
    if REUSE:                                  # taken from the reused store where it has them
        wanted.discard("web_published")
        for name, spec in (("web_limit_req", "web-limit-req.yaml"), ("web_slow", "web-slow.yaml")):
            found = _reused(e2e_dirs, "web", spec, required=False) if name in wanted else None
            if found:
                reused[name] = found
                wanted.discard(name)
    work = tmp_path_factory.mktemp("layered")
    started = {name: recipe(published, e2e_dirs, work) for name, recipe in LAYERED.items() if name in wanted}
    return {**reused, **{name: finish(finish_spec(run)) for name, (run, finish) in started.items()}}


def _skipped(item):
    return any(m.args and m.args[0] is True for m in item.iter_markers("skipif"))


def _web(published, dirs, work):
    run = start_spec(dirs, os.path.join(ROOT, "images", "golden-web.yaml"), "golden-run-web.stderr")
    return run, lambda result: published_entry(result, dirs)


def _violating(published, dirs, work):
    """A variant built on the published image that breaks CIS 5.1.16 (MaxAuthTries)."""
    version, image, sha = published
    spec = work / "max-auth-tries.yaml"
    spec.write_text(yaml.safe_dump(variant_spec("max-auth-tries", **{"base!": {"image": image, "sha256": sha}},
                                                customize=[os.path.join(ROOT, "tests", "data", "max-auth-tries.sh")])))
    run = start_spec(dirs, spec, "golden-run-max-auth-tries.stderr")
    return run, lambda result: (result, result["summary"], version)


def _emergency(published, dirs, work):
    """`golden run --emergency` of the bastion spec (Level 2) against a feed in which openssh has
    CVE-2099-0001 fixed in the version the images carry. A second feed adds CVE-2099-0002, fixed in
    no version yet released, for `golden cve` to find in the published image (a scan against it
    fails, as it should: a fix exists that the image lacks)."""
    version = published[0]
    sbom = json.load(open(os.path.join(dirs["store"], "images", version, "sbom.cdx.json")))
    openssh = next(c for c in sbom["components"] if c.get("name") == "openssh" and "arch=source" in c.get("purl", ""))
    feed, later = work / "tracker.json", work / "tracker-later.json"
    entry = lambda fixed: {"description": "test", "releases": {"bookworm": {  # noqa: E731
        "status": "resolved", "fixed_version": fixed, "urgency": "high"}}}
    json.dump({"openssh": {"CVE-2099-0001": entry(openssh["version"])}}, open(feed, "w"))
    json.dump({"openssh": {"CVE-2099-0001": entry(openssh["version"]), "CVE-2099-0002": entry("1:99.0-1")}},
              open(later, "w"))
    before = golden("cve", "CVE-2099-0002", "--feed", f"debian-tracker={later}", "--json", dirs=dirs)
    spec = work / "bastion.yaml"
    spec.write_text(yaml.safe_dump(variant_spec("bastion", "golden-bastion.yaml",
                                                scan={"feeds": {"debian-tracker": [str(feed)]}})))
    run = start_spec(dirs, spec, "golden-run-bastion-emergency.stderr", "--emergency", "CVE-2099-0001")
    return run, lambda result: {**result, "spec": spec, "feed": f"debian-tracker={feed}", "before": before}


def _bad_web(script):
    """A bad web version for the fleet tests: the web spec plus tests/data/SCRIPT. It passes its own gate
    (a few requests in a row are served well), so only a rollout's analysis under load can stop it."""
    def recipe(published, dirs, work):
        name = script.removesuffix(".sh")
        spec = work / f"{name}.yaml"
        spec.write_text(yaml.safe_dump(variant_spec("web", "golden-web.yaml", **{
            "customize+": [os.path.join(ROOT, "tests", "data", script)]})))
        return start_spec(dirs, spec, f"golden-run-{name}.stderr"), lambda result: published_entry(result, dirs)
    return recipe


LAYERED = {"web_published": _web, "web_limit_req": _bad_web("web-limit-req.sh"), "web_slow": _bad_web("web-slow.sh"),
           "violating_run": _violating, "emergency": _emergency}


@pytest.fixture(scope="session")
def web_published(request, e2e_dirs):
    """images/golden-web.yaml built on the default spec's published image: (version, path, sha256)."""
    if REUSE:
        return _reused(e2e_dirs, "web")
    return request.getfixturevalue("layered")["web_published"]


@pytest.fixture(scope="session")
def web_limit_req(layered):
    """A published web version that passes its gate but refuses most requests under load: (version, path, sha256)."""
    return layered["web_limit_req"]


@pytest.fixture(scope="session")
def web_slow(layered):
    """A published web version that passes its gate but takes over a second per request: (version, path, sha256)."""
    return layered["web_slow"]


@pytest.fixture(scope="session")
def violating_run(layered):
    """A variant breaking CIS 5.1.16 built on the published image: (its run, its summary, the published version)."""
    return layered["violating_run"]


@pytest.fixture(scope="session")
def emergency(layered):
    """The bastion spec's emergency rebuild for CVE-2099-0001: its run, spec, feed, and `golden cve` before."""
    return layered["emergency"]
