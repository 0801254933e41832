"""Data-shaped controls: the kinds of expected state a baseline entry can hold.

Each kind knows the shape of its baseline value, the facts it needs, and how to judge them:

    kind = KINDS["sysctl"]
    kind.validate({"net.ipv4.ip_forward": 0})         # None, or the reason the value is malformed
    kind.needs(value, request)                         # adds fact sections to a facts.Request
    kind.evaluate(value, facts)                        # list of findings; empty means compliant

The hardening script applies the same values (packer/scripts/hardening-cis.sh), so a value is
written once, in cis_checks/baseline.yaml.
"""

from . import expect


def _mapping_of_expectations(value, what):
    if not isinstance(value, dict) or not value:
        return f"must be a non-empty mapping of {what} to expected values"
    for key, spec in value.items():
        reason = expect.validate(spec)
        if reason:
            return f"{key}: {reason}"
    return None


def _list_of_names(value, what):
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        return f"must be a non-empty list of {what}"
    return None


class Kind:
    name = ""
    services = ()          # what a control of this kind touches (reported in JUnit and impact analysis)

    def validate(self, value):
        raise NotImplementedError

    def needs(self, value, request):
        raise NotImplementedError

    def evaluate(self, value, facts):
        raise NotImplementedError


class Sysctl(Kind):
    """Kernel parameters, both running (`sysctl -a`) and persisted for the next boot (sysctl.d)."""
    name, services = "sysctl", ("kernel",)

    def validate(self, value):
        return _mapping_of_expectations(value, "sysctl keys")

    def needs(self, value, request):
        request.add("sysctl")
        request.add("sysctl_files")

    def evaluate(self, value, facts):
        findings = []
        for key, spec in value.items():
            running = facts.sysctl.get(key)
            if not expect.check(running, spec):
                findings.append(f"sysctl {key} is {running if running is not None else 'absent'} at run time, "
                                f"expected {expect.describe(spec)}")
            persisted, source = facts.sysctl_persisted.get(key, (None, None))
            if not expect.check(persisted, spec):
                where = f" (from {source})" if source else " in /etc/sysctl.d and friends"
                findings.append(f"sysctl {key} persists as {persisted if persisted is not None else 'unset'}"
                                f"{where}, expected {expect.describe(spec)}")
        return findings


class KernelModules(Kind):
    """Kernel modules that must not be available: not loaded, not loadable, and blacklisted."""
    name, services = "kernel_modules", ("kernel",)

    def validate(self, value):
        return _list_of_names(value, "module names")

    def needs(self, value, request):
        request.add("modules", *value)
        request.add("lsmod")
        request.add("modprobe_config")

    def evaluate(self, value, facts):
        findings = []
        for name in value:
            m = facts.modules[name]
            if m.loaded:
                findings.append(f"module {name} is loaded")
            if m.file == "(builtin)":
                findings.append(f"module {name} is built into the kernel")
            elif m.file:
                if m.available:
                    findings.append(f"module {name} is loadable (modprobe would run: {m.modprobe or 'insmod'})")
                if not m.blacklisted:
                    findings.append(f"module {name} is not blacklisted")
        return findings


class Sshd(Kind):
    """The SSH daemon's effective settings (`sshd -T`, so Include'd drop-ins count)."""
    name, services = "sshd", ("sshd",)

    def validate(self, value):
        return _mapping_of_expectations(value, "sshd keywords (lowercase, as sshd -T prints them)")

    def needs(self, value, request):
        request.add("sshd")

    def evaluate(self, value, facts):
        findings = []
        if not facts.sshd or "port" not in facts.sshd:
            return ["sshd -T did not print a configuration: " + facts.raw("sshd").strip()[:300]]
        for key, spec in value.items():
            values = facts.sshd.get(key.lower())
            actual = " ".join(values) if values else None
            if not expect.check(actual, spec):
                findings.append(f"sshd {key} is {actual if actual is not None else 'unset'}, "
                                f"expected {expect.describe(spec)}")
        return findings


class Files(Kind):
    """Ownership and permissions of files: mode is an upper bound (no more permissive than)."""
    name, services = "files", ("filesystem",)
    FIELDS = {"mode", "owner", "group", "absent_ok"}

    def validate(self, value):
        if not isinstance(value, dict) or not value:
            return "must be a mapping of absolute paths to {mode, owner, group}"
        for path, want in value.items():
            if not str(path).startswith("/"):
                return f"{path}: must be an absolute path"
            if not isinstance(want, dict) or not want or set(want) - self.FIELDS:
                return f"{path}: must be a mapping with keys among {', '.join(sorted(self.FIELDS))}"
            mode = want.get("mode")
            if mode is not None and not (isinstance(mode, str) and len(mode) in (3, 4)
                                         and all(c in "01234567" for c in mode)):
                return f"{path}: mode must be an octal string such as \"0644\" (quote it)"
            for field in ("owner", "group"):
                v = want.get(field)
                if v is not None and not (isinstance(v, str) or (isinstance(v, list) and v)):
                    return f"{path}: {field} must be a name or a list of names"
        return None

    def needs(self, value, request):
        request.add("stat", *value)

    def evaluate(self, value, facts):
        findings = []
        for path, want in value.items():
            st = facts.stat(path)
            if not st.exists:
                if not want.get("absent_ok"):
                    findings.append(f"{path} does not exist")
                continue
            if "mode" in want:
                limit = int(want["mode"], 8)
                extra = st.mode & ~limit & 0o7777
                if extra:
                    findings.append(f"{path} has mode {st.mode:04o}, more permissive than {limit:04o} "
                                    f"(extra bits {extra:04o})")
            for field in ("owner", "group"):
                if field in want:
                    allowed = want[field] if isinstance(want[field], list) else [want[field]]
                    actual = getattr(st, field)
                    if actual not in allowed:
                        findings.append(f"{path} {field} is {actual}, expected {' or '.join(allowed)}")
        return findings


class PackagesAbsent(Kind):
    name, services = "packages_absent", ("packages",)

    def validate(self, value):
        return _list_of_names(value, "package names")

    def needs(self, value, request):
        request.add("packages")

    def evaluate(self, value, facts):
        return [f"package {p} is installed ({facts.packages[p]})" for p in value if p in facts.packages]


class PackagesPresent(Kind):
    name, services = "packages_present", ("packages",)

    def validate(self, value):
        return _list_of_names(value, "package names")

    def needs(self, value, request):
        request.add("packages")

    def evaluate(self, value, facts):
        return [f"package {p} is not installed" for p in value if p not in facts.packages]


class ServicesNotInUse(Kind):
    """A service is not in use: its package is absent, or its units are neither enabled nor active."""
    name, services = "services_not_in_use", ("services",)

    def validate(self, value):
        if not isinstance(value, dict) or not value:
            return "must be a mapping of package name to the list of its units"
        for pkg, units in value.items():
            reason = _list_of_names(units, f"units of {pkg}")
            if reason:
                return f"{pkg}: {reason}"
        return None

    def needs(self, value, request):
        for section in ("packages", "unit_files", "units"):
            request.add(section)

    def evaluate(self, value, facts):
        findings = []
        for pkg, units in value.items():
            if pkg not in facts.packages:
                continue
            for unit in units:
                state = facts.unit_files.get(unit)
                if state in ("enabled", "enabled-runtime", "alias", "indirect", "generated"):
                    findings.append(f"{unit} (package {pkg}) is {state}")
                active = facts.units.get(unit, (None, None, None))[1]
                if active in ("active", "activating", "reloading"):
                    findings.append(f"{unit} (package {pkg}) is {active}")
        return findings


class ServicesEnabled(Kind):
    """Units that must be enabled at boot and running now."""
    name, services = "services_enabled", ("services",)

    def validate(self, value):
        return _list_of_names(value, "unit names")

    def needs(self, value, request):
        request.add("unit_files")
        request.add("units")

    def evaluate(self, value, facts):
        findings = []
        for unit in value:
            state = facts.unit_files.get(unit, "not installed")
            if state not in ("enabled", "static", "alias", "indirect", "generated"):
                findings.append(f"{unit} is {state}, expected enabled")
            active = facts.units.get(unit, (None, "inactive", None))[1]
            if active != "active":
                findings.append(f"{unit} is {active}, expected active")
        return findings


class Mounts(Kind):
    """Mount points: a separate filesystem, and the options it is mounted with."""
    name, services = "mounts", ("filesystem",)

    def validate(self, value):
        if not isinstance(value, dict) or not value:
            return "must be a mapping of mount point to {separate, options}"
        for target, want in value.items():
            if not isinstance(want, dict) or set(want) - {"separate", "options"}:
                return f"{target}: must be a mapping with keys separate and/or options"
            opts = want.get("options", [])
            if not isinstance(opts, list):
                return f"{target}: options must be a list"
        return None

    def needs(self, value, request):
        request.add("mounts")

    def evaluate(self, value, facts):
        findings = []
        for target, want in value.items():
            fs = facts.mounts.get(target)
            if fs is None:
                if want.get("separate") or want.get("options"):
                    findings.append(f"{target} is not a separate mount")
                continue
            options = set((fs.get("options") or "").split(","))
            missing = [o for o in want.get("options", []) if o not in options]
            if missing:
                findings.append(f"{target} is mounted without {','.join(missing)} (options: {fs.get('options')})")
        return findings


class LoginDefs(Kind):
    name, services = "login_defs", ("accounts",)

    def validate(self, value):
        return _mapping_of_expectations(value, "login.defs keys")

    def needs(self, value, request):
        request.add("login_defs")

    def evaluate(self, value, facts):
        findings = []
        for key, spec in value.items():
            actual = facts.login_defs.get(key)
            if not expect.check(actual, spec):
                findings.append(f"/etc/login.defs {key} is {actual if actual is not None else 'unset'}, "
                                f"expected {expect.describe(spec)}")
        return findings


KINDS = {k.name: k for k in (Sysctl(), KernelModules(), Sshd(), Files(), PackagesAbsent(), PackagesPresent(),
                             ServicesNotInUse(), ServicesEnabled(), Mounts(), LoginDefs())}
