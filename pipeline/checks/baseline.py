"""The company baseline (cis_checks/baseline.yaml): roles, which recommendations are adopted at
which level for which roles, and the expected values that both the checks and the hardening read.

    bl = Baseline.load()
    bl.level_for("bastion")                       # 2
    bl.applies("5.1.16", role="general-purpose")  # adopted for this role at its level?
    bl.values("5.1.16")                           # {'sshd': {'maxauthtries': {'at_most': 4}}}
"""

import functools
import hashlib
import os
from dataclasses import dataclass, field

from pipeline import yamlsrc
from pipeline.checks.catalogue import Catalogue
from pipeline.checks.kinds import KINDS
from pipeline.paths import CHECKS_DIR

DEFAULT_PATH = os.path.join(CHECKS_DIR, "baseline.yaml")
META_KEYS = {"level", "roles", "adopted", "why"}


@dataclass
class Control:
    id: str
    level: int
    roles: tuple | None          # None: every role
    adopted: bool
    why: str | None
    values: dict = field(default_factory=dict)   # kind name -> baseline value
    line: int | None = None


class Baseline:
    def __init__(self, path, roles, controls, catalogue, digest, parameters, exception_horizon_days=180):
        self.path = path
        self.roles = roles                # name -> {"level": int, "description": str}
        self.controls = controls          # id -> Control (every catalogue recommendation)
        self.catalogue = catalogue
        self.sha256 = digest
        self.parameters = parameters      # named site parameters (not tied to one control)
        self.exception_horizon_days = exception_horizon_days

    @classmethod
    def load(cls, path=DEFAULT_PATH, catalogue=None):
        return _load(os.path.abspath(path), catalogue or Catalogue.load())

    def level_for(self, role):
        return self.roles[role]["level"]

    def applies(self, cis_id, role, level=None):
        """Is this control part of the standard for `role` at `level` (default: the role's level)?"""
        c = self.controls[cis_id]
        level = self.level_for(role) if level is None else level
        return c.adopted and c.level <= level and (c.roles is None or role in c.roles)

    def values(self, cis_id):
        return self.controls[cis_id].values


@functools.lru_cache(maxsize=8)
def _load(path, catalogue):
    doc = yamlsrc.load(path)
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    top = yamlsrc.Fields(doc, doc.data)
    top.get("benchmark", str, required=True)
    roles_raw = top.get("roles", dict, required=True)
    params = top.get("parameters", dict, default={})
    policy = top.sub("exception_policy")
    horizon = 180
    if policy:
        horizon = policy.get("horizon_days", int, default=180,
                             check=lambda v: None if 1 <= v <= 3650 else "must be between 1 and 3650")
        policy.done()
    controls_raw = top.get("controls", dict, required=True)
    top.done()
    roles = {}
    for name in roles_raw:
        f = yamlsrc.Fields(doc, roles_raw[name], f"roles.{name}")
        level = f.get("level", int, required=True, check=lambda v: None if v in (1, 2) else "must be 1 or 2")
        roles[name] = {"level": level, "description": f.get("description", str, default="")}
        f.done()
    controls = {r.id: Control(r.id, r.level, None, True, None) for r in catalogue}
    for cis_id, entry in controls_raw.items():
        key = str(cis_id)
        if key not in catalogue:
            raise doc.error(f"unknown CIS id {key!r} (not in {os.path.basename(catalogue.path)})",
                            controls_raw, cis_id, field=f"controls.{key}")
        f = yamlsrc.Fields(doc, entry, f"controls.{key}")
        c = controls[key]
        c.line = doc.line(controls_raw, cis_id)
        c.level = f.get("level", int, default=c.level, check=lambda v: None if v in (1, 2) else "must be 1 or 2")
        role_list = f.get("roles", list)
        if role_list is not None:
            unknown = [r for r in role_list if r not in roles]
            if unknown:
                raise f.error("roles", f"unknown role {unknown[0]!r} (known: {', '.join(roles)})")
            c.roles = tuple(role_list)
        c.adopted = f.get("adopted", bool, default=True)
        c.why = f.get("why", str)
        if not c.adopted and not c.why:
            raise f.error("adopted", "a recommendation that is not adopted needs a `why`")
        for kind_name in entry:
            if kind_name in META_KEYS:
                continue
            if kind_name not in KINDS:
                raise f.error(kind_name, "unknown check kind (known: " + ", ".join(sorted(KINDS)) + ")")
            reason = KINDS[kind_name].validate(entry[kind_name])
            if reason:
                raise f.error(kind_name, reason)
            f.seen.add(kind_name)
            c.values[kind_name] = entry[kind_name]
        f.done()
    return Baseline(path, roles, controls, catalogue, digest, params, horizon)
