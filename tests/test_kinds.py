"""Each data kind judges facts in the collector's own output format: compliant and violating."""

from pipeline.checks.facts import MARK, Facts, Request
from pipeline.checks.kinds import KINDS


def facts(**sections):
    return Facts.parse("".join(f"{MARK} {name}\n{text}\n" for name, text in sections.items()))


def evaluate(kind, value, f):
    assert KINDS[kind].validate(value) is None
    return KINDS[kind].evaluate(value, f)


SYSCTL_FILES = "# /usr/lib/sysctl.d/50-default.conf\nnet.ipv4.ip_forward = 1\n# /etc/sysctl.d/60-golden-cis.conf\nnet.ipv4.ip_forward = 0\n"


def test_sysctl_needs_runtime_and_persisted():
    ok = facts(sysctl="net.ipv4.ip_forward = 0", sysctl_files=SYSCTL_FILES)
    assert evaluate("sysctl", {"net.ipv4.ip_forward": 0}, ok) == []
    runtime_bad = facts(sysctl="net.ipv4.ip_forward = 1", sysctl_files=SYSCTL_FILES)
    assert ["at run time" in f for f in evaluate("sysctl", {"net.ipv4.ip_forward": 0}, runtime_bad)] == [True]
    later_file = SYSCTL_FILES + "# /etc/sysctl.d/99-local.conf\nnet.ipv4.ip_forward=1\n"
    persisted_bad = facts(sysctl="net.ipv4.ip_forward = 0", sysctl_files=later_file)
    (finding,) = evaluate("sysctl", {"net.ipv4.ip_forward": 0}, persisted_bad)
    assert "persists as 1 (from /etc/sysctl.d/99-local.conf)" in finding


def test_kernel_modules():
    base = dict(lsmod="ext4 1 0 - Live 0x0", modprobe_config="blacklist cramfs\ninstall cramfs /bin/false")
    absent = facts(modules="cramfs||modprobe: FATAL: Module cramfs not found", **base)
    assert evaluate("kernel_modules", ["cramfs"], absent) == []
    disabled = facts(modules="cramfs|/lib/modules/x/cramfs.ko|install /bin/false ", **base)
    assert evaluate("kernel_modules", ["cramfs"], disabled) == []
    loadable = facts(modules="cramfs|/lib/modules/x/cramfs.ko|insmod /lib/modules/x/cramfs.ko ",
                     lsmod="cramfs 1 0 - Live 0x0", modprobe_config="")
    found = evaluate("kernel_modules", ["cramfs"], loadable)
    assert any("loaded" in f for f in found) and any("loadable" in f for f in found) and any("blacklisted" in f for f in found)


def test_kernel_module_names_with_dashes():
    f = facts(modules="usb-storage|/k/usb-storage.ko|install /bin/false ", lsmod="",
              modprobe_config="blacklist usb_storage")
    assert evaluate("kernel_modules", ["usb-storage"], f) == []


def test_sshd_effective_settings():
    out = "port 22\nmaxauthtries 4\npermitrootlogin no\nciphers aes256-ctr,aes128-ctr\n"
    f = facts(sshd=out)
    assert evaluate("sshd", {"maxauthtries": {"at_most": 4}, "permitrootlogin": False,
                             "ciphers": {"subset_of": ["aes256-ctr", "aes128-ctr"]}}, f) == []
    bad = facts(sshd=out.replace("maxauthtries 4", "maxauthtries 6").replace("no", "yes"))
    assert len(evaluate("sshd", {"maxauthtries": {"at_most": 4}, "permitrootlogin": False}, bad)) == 2
    broken = facts(sshd="/etc/ssh/sshd_config line 3: Bad configuration option: Foo")
    assert "did not print a configuration" in evaluate("sshd", {"maxauthtries": 4}, broken)[0]


def test_files_mode_is_an_upper_bound():
    f = facts(stat="/etc/shadow|640|root|shadow|regular file\n/etc/passwd|600|root|root|regular file\n"
                   "/etc/passwd-|absent")
    want = {"/etc/shadow": {"mode": "0640", "owner": "root", "group": ["root", "shadow"]},
            "/etc/passwd": {"mode": "0644", "owner": "root", "group": "root"},
            "/etc/passwd-": {"mode": "0644", "absent_ok": True}}
    assert evaluate("files", want, f) == []
    loose = facts(stat="/etc/shadow|644|root|users|regular file")
    found = evaluate("files", {"/etc/shadow": want["/etc/shadow"]}, loose)
    assert any("extra bits 0004" in x for x in found) and any("group is users" in x for x in found)
    missing = facts(stat="/etc/shadow|absent")
    assert evaluate("files", {"/etc/shadow": want["/etc/shadow"]}, missing) == ["/etc/shadow does not exist"]


def test_packages_and_services():
    pk = "telnet\tinstalled\t1.0\nnis\tconfig-files\t2.0\navahi-daemon\tinstalled\t0.8\n"
    f = facts(packages=pk, unit_files="avahi-daemon.service enabled enabled\nssh.service enabled enabled",
              units="avahi-daemon.service loaded active running Avahi\nssh.service loaded active running SSH")
    assert evaluate("packages_absent", ["nis"], f) == []
    assert evaluate("packages_absent", ["telnet"], f) == ["package telnet is installed (1.0)"]
    assert evaluate("packages_present", ["telnet"], f) == []
    assert len(evaluate("services_not_in_use", {"avahi-daemon": ["avahi-daemon.service"]}, f)) == 2
    assert evaluate("services_not_in_use", {"rpcbind": ["rpcbind.service"]}, f) == []
    assert evaluate("services_enabled", ["ssh.service"], f) == []
    assert evaluate("services_enabled", ["auditd.service"], f) == [
        "auditd.service is not installed, expected enabled", "auditd.service is inactive, expected active"]


def test_mounts_and_login_defs():
    f = facts(mounts='{"filesystems": [{"target": "/tmp", "source": "tmpfs", "fstype": "tmpfs", '
                     '"options": "rw,nosuid,nodev"}]}',
              login_defs="# comment\nPASS_MAX_DAYS\t99999\nENCRYPT_METHOD YESCRYPT\n")
    assert evaluate("mounts", {"/tmp": {"options": ["nodev", "nosuid"]}}, f) == []
    assert "without noexec" in evaluate("mounts", {"/tmp": {"options": ["noexec"]}}, f)[0]
    assert evaluate("mounts", {"/var": {"separate": True}}, f) == ["/var is not a separate mount"]
    assert evaluate("login_defs", {"ENCRYPT_METHOD": {"one_of": ["YESCRYPT", "SHA512"]}}, f) == []
    assert "PASS_MAX_DAYS is 99999" in evaluate("login_defs", {"PASS_MAX_DAYS": {"at_most": 365}}, f)[0]


def test_request_builds_one_script_with_only_needed_sections():
    req = Request()
    KINDS["sshd"].needs({"maxauthtries": 4}, req)
    KINDS["files"].needs({"/etc/passwd": {"mode": "0644"}}, req)
    script = req.script()
    assert f"echo '{MARK} sshd'" in script and "/etc/passwd" in script and "sysctl -a" not in script


def test_validation_messages():
    assert "absolute path" in KINDS["files"].validate({"etc/passwd": {"mode": "0644"}})
    assert "octal string" in KINDS["files"].validate({"/etc/passwd": {"mode": 644}})
    assert "non-empty list" in KINDS["kernel_modules"].validate("cramfs")
    assert "at_most needs an integer" in KINDS["sshd"].validate({"maxauthtries": {"at_most": "four"}})
