"""Acceptance fixtures: the image spec's agents as parameters, the version the candidate must say it
is (--image-version), and the SSH endpoint of the candidate as seen from the test runner (for the
live SSH policy tests)."""

import os

import paramiko
import pytest

from pipeline.errors import GoldenError
from pipeline.paths import IMAGES_DIR
from pipeline.store.version import Version


def pytest_addoption(parser):
    parser.getgroup("golden").addoption(
        "--image-version", dest="golden_image_version", metavar="VERSION",
        help="the version the candidate's stamp (/etc/golden/image.json) must name; default: the version "
             "in the file name of --image or --artifact (golden-<name>-YYYY.MM.DD+N.qcow2)")


@pytest.fixture(scope="session")
def candidate_version(request):
    """The version under test: --image-version, else the one the image file is named after."""
    opt = request.config.option
    if opt.golden_image_version:
        return opt.golden_image_version
    path = opt.golden_artifact or opt.golden_image
    name = os.path.basename(path or "").removesuffix(".qcow2")
    try:
        return str(Version.parse(name))
    except GoldenError:
        pytest.fail(f"which version is under test? give --image-version (the image file {path!r} is not named "
                    "after a version)" if path else "which version is under test? give --image-version")


def pytest_generate_tests(metafunc):
    if "agent" in metafunc.fixturenames:
        from pipeline.checks.baseline import Baseline
        from pipeline.image.spec import ImageSpec
        opt = metafunc.config.option
        path = opt.golden_spec or os.path.join(IMAGES_DIR, "golden-linux.yaml")
        agents = ImageSpec.load(path, Baseline.load()).agents
        metafunc.parametrize("agent", agents, ids=[a.name for a in agents])


@pytest.fixture(scope="module")   # testinfra's `host` is module-scoped
def ssh_endpoint(host):
    """(hostname, port, user, key file) of the candidate's sshd, resolved like the suite's own connection."""
    backend = host.backend
    cfg = {"hostname": backend.host.name, "port": int(backend.host.port or 22), "user": backend.host.user,
           "identityfile": getattr(backend, "ssh_identity_file", None)}
    if getattr(backend, "ssh_config", None):
        with open(backend.ssh_config) as fh:
            conf = paramiko.SSHConfig()
            conf.parse(fh)
        found = conf.lookup(backend.host.name)
        cfg["hostname"] = found.get("hostname", cfg["hostname"])
        cfg["port"] = int(found.get("port", cfg["port"]))
        cfg["user"] = found.get("user", cfg["user"])
        if found.get("identityfile"):
            cfg["identityfile"] = found["identityfile"][0]
    return cfg
