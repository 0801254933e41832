"""Acceptance fixtures: the image spec's agents as parameters, and the SSH endpoint of the candidate
as seen from the test runner (for the live SSH policy tests)."""

import os

import paramiko
import pytest


def pytest_generate_tests(metafunc):
    if "agent" in metafunc.fixturenames:
        from pipeline.checks.baseline import Baseline
        from pipeline.image.spec import ImageSpec
        opt = metafunc.config.option
        path = opt.golden_spec or os.path.join(os.path.dirname(os.path.dirname(__file__)), "images",
                                               "golden-linux.yaml")
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
