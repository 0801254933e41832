"""The suite's options and the state of one pytest session: catalogue, baseline, role and level,
the selected controls, the exceptions, and the fact request the selected checks add up to.

    state = config.stash[STATE]
    state.selected("5.1.20")          # applies to the role and level, and matches --controls
"""

import fnmatch
import os

import pytest

from pipeline.checks import exceptions
from pipeline.checks.baseline import Baseline
from pipeline.checks.catalogue import Catalogue
from pipeline.checks.facts import Facts, Request
from pipeline.checks.kinds import KINDS
from pipeline.errors import GoldenError

STATE = pytest.StashKey()


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
        self.as_of = exceptions.as_of_day(opt.golden_as_of)
        from pipeline.image.spec import known_images
        paths = [p for p in (opt.golden_exceptions or exceptions.DEFAULT_DIR).split(",") if p]
        self.exceptions = exceptions.load(paths, self.baseline, known_images(baseline=self.baseline), today=self.as_of)
        self.defined = {}                  # cis id -> where its check is defined
        self.request = Request()
        self.facts = {}                    # host id -> Facts
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
        import testinfra
        if spec not in self.hosts:
            opt = config.option
            self.hosts[spec] = testinfra.get_host(
                spec, connection=opt.connection, ssh_config=opt.ssh_config, ssh_identity_file=opt.ssh_identity_file,
                sudo=opt.sudo, sudo_user=opt.sudo_user, ansible_inventory=opt.ansible_inventory,
                force_ansible=opt.force_ansible)
        return self.hosts[spec]

    def facts_for(self, host):
        from pipeline.checks.plugin.sharing import gather
        key = host.backend.get_pytest_id()
        if key not in self.facts:
            self.facts[key] = Facts.parse(gather(self.config, host, key, self.request.script()))
        return self.facts[key]


def pytest_addoption(parser):
    group = parser.getgroup("golden", "golden image acceptance")
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
    group.addoption("--spec", dest="golden_spec", metavar="PATH",
                    help="the image spec the acceptance tests read (agents, time servers, allowlists); "
                         "default: images/golden-linux.yaml")


def pytest_configure(config):
    config.addinivalue_line("markers", "cis(id, violate, needs, services): the check of a CIS recommendation")
    config.addinivalue_line("markers", "level1: a CIS Level 1 control")
    config.addinivalue_line("markers", "level2: a CIS Level 2 (only) control")
    config.addinivalue_line("markers", "violate(script): the scenario that must make an acceptance test fail")
    config.addinivalue_line("markers", "hygiene: inspects the artifact itself, read-only, before any boot")
    for name in sorted({s for k in KINDS.values() for s in k.services} | {"sshd", "auditd", "pam", "network",
                                                                         "cron", "logging", "time", "accounts",
                                                                         "firewall", "boot", "apparmor"}):
        config.addinivalue_line("markers", f"{name}: controls touching {name}")
    try:
        config.stash[STATE] = State(config)
    except GoldenError as exc:
        raise pytest.UsageError(str(exc)) from None
