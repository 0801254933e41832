"""The VM layer's pytest plugin: `--image PATH` boots a candidate (ephemeral overlay) for the
session and points the suite at it; `--violate GLOBS` first applies violation scenarios to that
throwaway overlay; `--artifact PATH` gives the hygiene tests the image file, mounted read-only.

    pytest cis_checks acceptance --image=runs/<v>/<v>.qcow2 [--violate='5.1.*']
"""

import fnmatch
import json
import os
import shlex
import tempfile

import pytest

from pipeline.checks import scenarios
from pipeline.checks.catalogue import id_key
from pipeline.checks.plugin.session import STATE
from pipeline.errors import GoldenError
from pipeline.vm import boot


def pytest_addoption(parser):
    group = parser.getgroup("golden", "golden image acceptance")
    group.addoption("--image", dest="golden_image", metavar="PATH",
                    help="boot this qcow2 (ephemeral overlay) for the session and test it")
    group.addoption("--boot-dir", dest="golden_boot_dir", metavar="DIR",
                    help="where --image keeps its console log and keys (default: a temporary directory)")
    group.addoption("--artifact", dest="golden_artifact", metavar="PATH",
                    help="the image file the hygiene tests inspect read-only (default: --image)")
    group.addoption("--violate", dest="golden_violate", metavar="GLOBS",
                    help="with --image only: first apply the violation scenarios of these controls "
                         "(comma-separated globs; acceptance tests' as acceptance:TEST; !GLOB leaves out) "
                         "to the booted overlay, to see their checks fail")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
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


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist workers test the candidate the controller booted."""
    node.workerinput["golden_hosts"] = node.config.option.hosts if node.config.option.golden_image else None


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


@pytest.fixture(scope="session")
def artifact_root(request):
    """The artifact's root filesystem, mounted read-only, for the hygiene tests (--artifact or --image)."""
    from pipeline.vm.artifact import mounted_root
    path = request.config.option.golden_artifact or request.config.option.golden_image
    if not path:
        pytest.skip("hygiene tests inspect an image file: give --artifact PATH or --image PATH")
    with mounted_root(path) as root:
        yield root
