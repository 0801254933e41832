"""Data-shaped controls: the kinds of expected state a baseline entry can hold.

Each kind knows the shape of its baseline value, the facts it needs, and how to judge them:

    kind = KINDS["sysctl"]
    kind.validate({"net.ipv4.ip_forward": 0})         # None, or the reason the value is malformed
    kind.needs(value, request)                         # adds fact sections to a facts.Request
    kind.evaluate(value, facts)                        # list of findings; empty means compliant
                                                       # (raises NotApplicable if there is nothing to judge)

The hardening script applies the same values (packer/scripts/hardening-cis.sh), so a value is
written once, in cis_checks/baseline.yaml.
"""

import re

from pipeline.checks import expect
from pipeline.checks.facts import CONFIG_SOURCES, GLOB_SAFE


class NotApplicable(Exception):
    """What a control judges does not exist on the host (the options of a mount point that is not a
    separate mount): nothing was checked, so the control neither passes nor fails.

        raise NotApplicable("/home is not a separate mount")
    """


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

    def services_of(self, value):
        return set(self.services)

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
    """Ownership and permissions of files (paths or globs): mode is an upper bound."""
    name, services = "files", ("filesystem",)
    FIELDS = {"mode", "owner", "group", "absent_ok"}

    def validate(self, value):
        if not isinstance(value, dict) or not value:
            return "must be a mapping of absolute paths to {mode, owner, group}"
        for path, want in value.items():
            if not str(path).startswith("/"):
                return f"{path}: must be an absolute path"
            if not GLOB_SAFE.match(str(path)):
                return f"{path}: only letters, digits, _ . / * ? + @ : - are allowed in a path or glob"
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
        for pattern, want in value.items():
            matched = facts.stats(pattern)
            if not matched and not want.get("absent_ok"):
                findings.append(f"{pattern} does not exist")
            for st in matched:
                findings += self._judge(st, want)
        return findings

    @staticmethod
    def _judge(st, want):
        findings, path = [], st.path
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
        request.add("packages")
        request.add("units")
        request.add("unit_files", *(u for units in value.values() for u in units))

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
        request.add("unit_files", *value)
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
    """Mount points: a separate filesystem (`separate: true`: mounted now, not a bind mount of a
    directory of another filesystem, and mounted again at boot), and the options it must be
    mounted with wherever it is a separate mount."""
    name, services = "mounts", ("filesystem",)
    API_MOUNTS = {"/dev/shm"}       # systemd mounts these itself at every boot, without fstab or unit
    AT_BOOT = ("enabled", "enabled-runtime", "static", "generated", "alias", "indirect")

    def validate(self, value):
        if not isinstance(value, dict) or not value:
            return "must be a mapping of mount point to {separate, options}"
        for target, want in value.items():
            if not isinstance(want, dict) or set(want) - {"separate", "options"}:
                return f"{target}: must be a mapping with keys separate and/or options"
            if not isinstance(want.get("options", []), list):
                return f"{target}: options must be a list"
        return None

    def needs(self, value, request):
        request.add("mounts")
        if any(want.get("separate") for want in value.values()):
            request.add("fstab")
            request.add("unit_files", *(self.mount_unit(t) for t, want in value.items() if want.get("separate")))

    @staticmethod
    def mount_unit(target):
        """systemd's unit name for a mount point (as `systemd-escape -p --suffix=mount`)."""
        path = target.strip("/")
        return ("".join(c if c.isalnum() or c in ":_." else "-" if c == "/" else f"\\x{ord(c):02x}"
                        for c in path) or "-") + ".mount"

    def _not_at_boot(self, target, facts):
        unit = self.mount_unit(target)
        state = facts.unit_files.get(unit)
        in_fstab = any(len(w) >= 4 and not w[0].startswith("#") and w[1] == target and "noauto" not in w[3].split(",")
                       for w in (line.split() for line in facts.lines("fstab")))
        if state == "masked" or not (in_fstab or state in self.AT_BOOT or target in self.API_MOUNTS):
            return f"{target} is not mounted at boot (/etc/fstab: {'yes' if in_fstab else 'no'}, {unit}: {state or 'none'})"
        return None

    def evaluate(self, value, facts):
        findings, absent = [], []
        for target, want in value.items():
            fs = facts.mounts.get(target)
            if want.get("separate"):
                if fs is None:
                    findings.append(f"{target} is not a separate mount")
                elif "[" in (fs.get("source") or ""):      # findmnt shows a bind mount as DEVICE[/directory]
                    findings.append(f"{target} is a bind mount of {fs['source']}, not a separate filesystem")
                elif reason := self._not_at_boot(target, facts):
                    findings.append(reason)
            if fs is None:
                absent += [] if want.get("separate") else [target]
                continue    # CIS: options apply "if a separate partition exists"
            options = set((fs.get("options") or "").split(","))
            missing = [o for o in want.get("options", []) if o not in options]
            if missing:
                findings.append(f"{target} is mounted without {','.join(missing)} (options: {fs.get('options')})")
        if len(absent) == len(value):
            raise NotApplicable(f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not a separate mount, "
                                "so its mount options were not checked")
        return findings


class Config(Kind):
    """Settings as the program reads them: drop-ins merged, the last setting winning.

    config: {journald: {Storage: persistent}, login_defs: {PASS_MAX_DAYS: {at_most: 365}}}
    """
    name, services = "config", ()
    SERVICES = {"journald": "logging", "rsyslog": "logging", "auditd": "auditd", "pwquality": "pam",
                "faillock": "pam", "login_defs": "accounts", "useradd": "accounts", "coredump": "kernel",
                "chrony": "time"}

    def validate(self, value):
        if not isinstance(value, dict) or not value:
            return "must be a mapping of configuration source to settings"
        for source, settings in value.items():
            if source not in CONFIG_SOURCES:
                return f"unknown configuration source {source!r} (known: {', '.join(sorted(CONFIG_SOURCES))})"
            reason = _mapping_of_expectations(settings, f"{source} keys")
            if reason:
                return f"{source}: {reason}"
        return None

    def services_of(self, value):
        return {self.SERVICES[s] for s in value}

    def needs(self, value, request):
        request.add("config", *value)

    def evaluate(self, value, facts):
        findings = []
        for source, settings in value.items():
            effective = facts.config(source)
            for key, spec in settings.items():
                actual = effective.get(key)
                if not expect.check(actual, spec):
                    shown = "unset" if actual is None else ("set" if actual == "" else actual)
                    findings.append(f"{source} {key} is {shown}, expected {expect.describe(spec)}")
        return findings


class KernelCmdline(Kind):
    """Kernel parameters of the running kernel (/proc/cmdline) and of every boot entry in grub.cfg."""
    name, services = "kernel_cmdline", ("kernel",)

    def validate(self, value):
        return _mapping_of_expectations(value, "kernel parameters")

    def needs(self, value, request):
        request.add("cmdline")
        request.add("grub_cfg")

    @staticmethod
    def _params(line):
        out = {}
        for word in line.split():
            key, _, val = word.partition("=")
            out[key] = val
        return out

    def evaluate(self, value, facts):
        findings = []
        running = self._params(facts.raw("cmdline"))
        entries = [l.strip() for l in facts.raw("grub_cfg").splitlines() if l.strip().startswith("linux")]
        if not entries:
            findings.append("grub.cfg has no linux boot entries")
        for key, spec in value.items():
            if not expect.check(running.get(key), spec):
                findings.append(f"the running kernel has {key}={running.get(key, '(unset)')}, expected "
                                f"{expect.describe(spec)}")
            bad = [e for e in entries if not expect.check(self._params(e).get(key), spec)]
            if bad:
                findings.append(f"{len(bad)} of {len(entries)} grub.cfg boot entries lack {key} "
                                f"{expect.describe(spec)} (e.g. {bad[0][:120]})")
        return findings


def pam_rules(facts):
    """/etc/pam.d file name -> resolved rules [(type, control, module, args)], @include expanded."""
    files = {path.rsplit("/", 1)[-1]: text for path, text in facts.files("pam").items()}

    def resolve(name, depth=0):
        rules = []
        for line in files.get(name, "").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("@include") and depth < 8:
                rules += resolve(line.split()[1], depth + 1)
                continue
            words = line.split()
            if words[0].startswith("-"):
                words[0] = words[0][1:]
            control = words[1]
            rest = words[2:]
            if control.startswith("["):        # [value=action ...] spans words until the closing bracket
                while not control.endswith("]") and rest:
                    control += " " + rest.pop(0)
            if rest:
                rules.append((words[0], control, rest[0].rsplit("/", 1)[-1], rest[1:]))
        return rules
    return {name: resolve(name) for name in files}


class Pam(Kind):
    """PAM rules in the stacks as PAM resolves them (@include expanded).

    pam:
      common-password:
        - {type: password, module: pam_unix.so, args: {use_authtok: true, nullok: false}}
        - {type: auth, module: pam_faillock.so, args: {preauth: true}, match: any}

    args: true = present, false = absent, otherwise the value of key=value. Every rule of that
    type and module must satisfy the args (`match: any`: at least one must); `present: false`
    requires there be no such rule.
    """
    name, services = "pam", ("pam",)
    FIELDS = {"type", "module", "args", "match", "present"}

    def validate(self, value):
        if not isinstance(value, dict) or not value:
            return "must be a mapping of /etc/pam.d file name to a list of rules"
        for name, rules in value.items():
            if not isinstance(rules, list) or not rules:
                return f"{name}: must be a list of rules"
            for rule in rules:
                if not isinstance(rule, dict) or set(rule) - self.FIELDS or not {"type", "module"} <= set(rule):
                    return f"{name}: each rule needs type and module (fields: {', '.join(sorted(self.FIELDS))})"
                if rule["type"] not in ("auth", "account", "password", "session"):
                    return f"{name}: type must be auth, account, password or session"
                if rule.get("match", "all") not in ("all", "any"):
                    return f"{name}: match must be all or any"
                for arg, spec in (rule.get("args") or {}).items():
                    reason = None if isinstance(spec, bool) else expect.validate(spec)
                    if reason:
                        return f"{name}: {rule['module']} {arg}: {reason}"
        return None

    def needs(self, value, request):
        request.add("pam")

    @staticmethod
    def _arg_ok(args, name, spec):
        values = {a.partition("=")[0]: a.partition("=")[2] for a in args}
        if spec is True:
            return name in values
        if spec is False:
            return name not in values
        return expect.check(values.get(name), spec)

    def evaluate(self, value, facts):
        stacks = pam_rules(facts)
        findings = []
        for name, rules in value.items():
            if name not in stacks:
                findings.append(f"/etc/pam.d/{name} does not exist")
                continue
            for rule in rules:
                found = [r for r in stacks[name] if r[0] == rule["type"] and r[2] == rule["module"]]
                what = f"/etc/pam.d/{name}: {rule['type']} {rule['module']}"
                if rule.get("present", True) is False:
                    if found:
                        findings.append(f"{what} is used ({' '.join(found[0][3])}), expected absent")
                    continue
                if not found:
                    findings.append(f"{what} is not in the stack")
                    continue
                args = rule.get("args") or {}
                good = [r for r in found if all(self._arg_ok(r[3], a, s) for a, s in args.items())]
                if (rule.get("match", "all") == "all" and len(good) != len(found)) or not good:
                    bad = next(r for r in found if r not in good) if good != found else found[0]
                    want = ", ".join(f"{a}" if s is True else f"no {a}" if s is False else f"{a} {expect.describe(s)}"
                                     for a, s in args.items())
                    findings.append(f"{what} has args [{' '.join(bad[3])}], expected {want}")
        return findings


def _audit_normal(rule):
    words = rule.split()
    out, i = [], 0
    while i < len(words):       # `-k key` and `-F key=key` are the same rule; auditctl -l prints the latter
        if words[i] == "-k" and i + 1 < len(words):
            out += ["-F", f"key={words[i + 1]}"]
            i += 2
            continue
        out.append(words[i])
        i += 1
    return " ".join(out)


class AuditRules(Kind):
    """Audit rules, loaded in the kernel (`auditctl -l`) and on disk for the next boot (rules.d)."""
    name, services = "audit_rules", ("auditd",)

    def validate(self, value):
        return _list_of_names(value, "audit rules in auditctl -l form")

    def needs(self, value, request):
        request.add("audit_loaded")
        request.add("audit_files")

    def evaluate(self, value, facts):
        loaded = {_audit_normal(l) for l in facts.lines("audit_loaded")}
        on_disk = {_audit_normal(l.strip()) for text in facts.files("audit_files").values()
                   for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")}
        findings = []
        for rule in value:
            norm = _audit_normal(rule)
            if norm not in loaded:
                findings.append(f"audit rule not loaded: {rule}")
            if norm not in on_disk:
                findings.append(f"audit rule not in /etc/audit/rules.d: {rule}")
        return findings


class Banners(Kind):
    """Login banners: exactly the company text, and nothing that tells an attacker the OS or kernel."""
    name, services = "banners", ("accounts",)
    LEAKS = re.compile(r"\\[mrsv]|debian|linux|bookworm", re.I)

    def validate(self, value):
        if not isinstance(value, dict) or not value or not all(
                str(p).startswith("/") and isinstance(t, str) and t.strip() for p, t in value.items()):
            return "must be a mapping of absolute path to non-empty banner text"
        return None

    def needs(self, value, request):
        request.add("content", *value)

    def evaluate(self, value, facts):
        findings = []
        for path, text in value.items():
            actual = facts.content(path)
            if actual is None:
                findings.append(f"{path} does not exist")
                continue
            if actual.strip() != text.strip():
                findings.append(f"{path} is not the company banner (starts: {actual.strip()[:60]!r})")
            leak = self.LEAKS.search(actual)
            if leak:
                findings.append(f"{path} discloses the system ({leak.group(0)!r})")
        return findings


class Params(Kind):
    """Named values for a logic-shaped control (its Python test and hardening function read them)."""
    name, services = "params", ()

    def validate(self, value):
        if not isinstance(value, dict) or not value:
            return "must be a non-empty mapping of parameter name to value"
        for key, v in value.items():
            if not isinstance(v, (str, int, bool, list)):
                return f"{key}: must be a value or a list of values"
        return None

    def needs(self, value, request):
        pass

    def evaluate(self, value, facts):
        return []


KINDS = {k.name: k for k in (Sysctl(), KernelModules(), Sshd(), Files(), PackagesAbsent(), PackagesPresent(),
                             ServicesNotInUse(), ServicesEnabled(), Mounts(), Config(), KernelCmdline(), Pam(),
                             AuditRules(), Banners(), Params())}
EVALUATED = {name for name in KINDS if name != "params"}
