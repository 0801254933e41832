"""Each data kind judges facts in the collector's own output format: compliant and violating."""

from pipeline.checks.facts import MARK, Request
from pipeline.checks.kinds import KINDS

from .checkhelpers import facts


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
    f = facts(stat="/etc/shadow|/etc/shadow|640|root|shadow|regular file\n"
                   "/etc/passwd|/etc/passwd|600|root|root|regular file\n/etc/passwd-|absent")
    want = {"/etc/shadow": {"mode": "0640", "owner": "root", "group": ["root", "shadow"]},
            "/etc/passwd": {"mode": "0644", "owner": "root", "group": "root"},
            "/etc/passwd-": {"mode": "0644", "absent_ok": True}}
    assert evaluate("files", want, f) == []
    loose = facts(stat="/etc/shadow|/etc/shadow|644|root|users|regular file")
    found = evaluate("files", {"/etc/shadow": want["/etc/shadow"]}, loose)
    assert any("extra bits 0004" in x for x in found) and any("group is users" in x for x in found)
    missing = facts(stat="/etc/shadow|absent")
    assert evaluate("files", {"/etc/shadow": want["/etc/shadow"]}, missing) == ["/etc/shadow does not exist"]


def test_files_globs_judge_every_match():
    keys = "/etc/ssh/ssh_host_*_key"
    f = facts(stat=f"{keys}|/etc/ssh/ssh_host_ed25519_key|600|root|root|regular file\n"
                   f"{keys}|/etc/ssh/ssh_host_ecdsa_key|644|root|root|regular file")
    (finding,) = evaluate("files", {keys: {"mode": "0600", "owner": "root"}}, f)
    assert finding.startswith("/etc/ssh/ssh_host_ecdsa_key has mode 0644")
    assert "only letters" in KINDS["files"].validate({"/etc/$(reboot)": {"mode": "0600"}})


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
              **{"config:login_defs": "# comment\nPASS_MAX_DAYS\t99999\nENCRYPT_METHOD YESCRYPT\n"})
    assert evaluate("mounts", {"/tmp": {"options": ["nodev", "nosuid"]}}, f) == []
    assert "without noexec" in evaluate("mounts", {"/tmp": {"options": ["noexec"]}}, f)[0]
    assert evaluate("mounts", {"/var": {"separate": True}}, f) == ["/var is not a separate mount"]
    assert evaluate("config", {"login_defs": {"ENCRYPT_METHOD": {"one_of": ["YESCRYPT", "SHA512"]}}}, f) == []
    assert "PASS_MAX_DAYS is 99999" in evaluate("config", {"login_defs": {"PASS_MAX_DAYS": {"at_most": 365}}}, f)[0]


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


def test_config_sources_merge_drop_ins_and_flags():
    f = facts(**{"config:journald": "# /etc/systemd/journald.conf\n[Journal]\nStorage=auto\n"
                                     "# /etc/systemd/journald.conf.d/60-golden.conf\n[Journal]\nStorage=persistent\n",
                 "config:pwquality": "minlen = 8\n# comment\nminlen = 14\nenforce_for_root\n"})
    assert evaluate("config", {"journald": {"Storage": "persistent"}}, f) == []
    assert evaluate("config", {"pwquality": {"minlen": {"at_least": 14}, "enforce_for_root": {"present": True}}}, f) == []
    assert evaluate("config", {"pwquality": {"dictcheck": {"present": True}}}, f) == [
        "pwquality dictcheck is unset, expected set"]
    assert "unknown configuration source 'nginx'" in KINDS["config"].validate({"nginx": {"a": 1}})


def test_kernel_cmdline_running_and_every_boot_entry():
    grub = "menuentry 'Debian' {\n  linux /vmlinuz root=UUID=x ro audit=1 apparmor=1\n}\n" \
           "menuentry 'rescue' {\n  linux /vmlinuz root=UUID=x ro single\n}\n"
    f = facts(cmdline="BOOT_IMAGE=/vmlinuz root=UUID=x ro audit=1 apparmor=1", grub_cfg=grub)
    found = evaluate("kernel_cmdline", {"audit": 1}, f)
    assert found == ["1 of 2 grub.cfg boot entries lack audit 1 (e.g. linux /vmlinuz root=UUID=x ro single)"]
    f2 = facts(cmdline="ro audit_backlog_limit=64", grub_cfg=grub.replace("single", "audit=1"))
    assert "running kernel has audit_backlog_limit=64" in evaluate("kernel_cmdline", {"audit_backlog_limit": {"at_least": 8192}}, f2)[0]


PAM = """### /etc/pam.d/common-auth
auth\trequisite\tpam_faillock.so preauth
auth\t[success=1 default=ignore]\tpam_unix.so nullok
auth\t[default=die]\tpam_faillock.so authfail
### /etc/pam.d/common-password
password requisite pam_pwquality.so retry=3
password [success=1 default=ignore] pam_unix.so obscure use_authtok try_first_pass yescrypt
### /etc/pam.d/sshd
@include common-auth
account required pam_nologin.so
"""


def test_pam_resolves_includes_and_checks_args():
    f = facts(pam=PAM)
    assert evaluate("pam", {"sshd": [{"type": "auth", "module": "pam_faillock.so", "args": {"preauth": True},
                                      "match": "any"}]}, f) == []
    (finding,) = evaluate("pam", {"common-auth": [{"type": "auth", "module": "pam_unix.so", "args": {"nullok": False}}]}, f)
    assert "has args [nullok], expected no nullok" in finding
    assert evaluate("pam", {"common-password": [{"type": "password", "module": "pam_unix.so",
                                                 "args": {"use_authtok": True, "yescrypt": True}}]}, f) == []
    assert evaluate("pam", {"common-password": [{"type": "password", "module": "pam_pwhistory.so"}]}, f) == [
        "/etc/pam.d/common-password: password pam_pwhistory.so is not in the stack"]
    assert "expected absent" in evaluate("pam", {"common-auth": [{"type": "auth", "module": "pam_unix.so",
                                                                   "present": False}]}, f)[0]
    # match all: both faillock rules would need preauth
    assert evaluate("pam", {"common-auth": [{"type": "auth", "module": "pam_faillock.so", "args": {"preauth": True}}]}, f)


def test_audit_rules_loaded_and_on_disk():
    f = facts(audit_loaded="-w /etc/sudoers -p wa -k scope\n-a always,exit -F arch=b64 -S adjtimex -F key=time-change",
              audit_files="### /etc/audit/rules.d/50.rules\n-w /etc/sudoers -p wa -k scope\n")
    assert evaluate("audit_rules", ["-w /etc/sudoers -p wa -k scope"], f) == []
    found = evaluate("audit_rules", ["-a always,exit -F arch=b64 -S adjtimex -k time-change"], f)
    assert found == ["audit rule not in /etc/audit/rules.d: -a always,exit -F arch=b64 -S adjtimex -k time-change"]


def test_banners():
    f = facts(content="### /etc/issue.net\nAuthorized use only.\n### /etc/issue\nDebian GNU/Linux 12 \\n \\l\n"
                      "### /etc/motd\n@@absent@@")
    assert evaluate("banners", {"/etc/issue.net": "Authorized use only."}, f) == []
    found = evaluate("banners", {"/etc/issue": "Authorized use only.", "/etc/motd": "x"}, f)
    assert any("not the company banner" in x for x in found) and any("discloses" in x for x in found)
    assert "/etc/motd does not exist" in found


def test_mounts_separate_now_and_at_boot():
    want = {"/tmp": {"separate": True, "options": ["nodev", "noexec"]}}
    tmp = '{"filesystems": [{"target": "/tmp", "source": "tmpfs", "fstype": "tmpfs", "options": "rw,nosuid,nodev,noexec"}]}'
    fstab = "UUID=4a90 / ext4 errors=remount-ro 0 1"
    ok = facts(mounts=tmp, fstab=fstab, unit_files="tmp.mount enabled enabled")
    assert evaluate("mounts", want, ok) == []
    disabled = facts(mounts=tmp, fstab=fstab, unit_files="tmp.mount disabled enabled")
    assert evaluate("mounts", want, disabled) == ["/tmp is not mounted at boot (/etc/fstab: no, tmp.mount: disabled)"]
    from_fstab = facts(mounts=tmp, fstab=fstab + "\ntmpfs /tmp tmpfs nodev,noexec 0 0", unit_files="tmp.mount generated -")
    assert evaluate("mounts", want, from_fstab) == []
    masked = facts(mounts=tmp, fstab=fstab + "\ntmpfs /tmp tmpfs nodev,noexec 0 0", unit_files="tmp.mount masked -")
    assert evaluate("mounts", want, masked) == ["/tmp is not mounted at boot (/etc/fstab: yes, tmp.mount: masked)"]


def test_mounts_bind_of_a_directory_is_not_separate():
    shm = ('{"filesystems": [{"target": "/dev/shm", "source": "tmpfs", "fstype": "tmpfs", "options": "rw,nosuid,nodev,noexec"},'
           '{"target": "/dev/shm", "source": "/dev/vda1[/var/lib/x]", "fstype": "ext4", "options": "rw,nosuid,nodev"}]}')
    f = facts(mounts=shm, fstab="", unit_files="x.service enabled enabled")
    assert evaluate("mounts", {"/dev/shm": {"separate": True, "options": ["noexec"]}}, f) == [
        "/dev/shm is a bind mount of /dev/vda1[/var/lib/x], not a separate filesystem",
        "/dev/shm is mounted without noexec (options: rw,nosuid,nodev)"]
    api = facts(mounts=shm.split(",{")[0] + "]}", fstab="", unit_files="x.service enabled enabled")
    assert evaluate("mounts", {"/dev/shm": {"separate": True}}, api) == []
    assert KINDS["mounts"].mount_unit("/var/log/audit") == "var-log-audit.mount"


def test_kernel_module_with_dependencies_disabled():
    f = facts(modules="udf|/lib/modules/x/udf.ko|insmod /lib/modules/x/crc-itu-t.ko  install /bin/false ",
              lsmod="", modprobe_config="blacklist udf\ninstall udf /bin/false")
    assert evaluate("kernel_modules", ["udf"], f) == []


def test_a_failed_fact_command_is_an_error_not_a_finding():
    import pytest

    from pipeline.checks.facts import FactError
    f = facts(unit_files="", units="")
    with pytest.raises(FactError, match="unit_files.*came back empty"):
        KINDS["services_enabled"].evaluate(["cron.service"], f)


def test_pwquality_main_file_and_module_arguments_win():
    f = facts(**{"config:pwquality": "minlen = 14\n# /etc/security/pwquality.conf\nminlen = 8\n"})
    assert "pwquality minlen is 8" in evaluate("config", {"pwquality": {"minlen": {"at_least": 14}}}, f)[0]
    f = facts(**{"config:faillock": "deny = 5\npreauth\ndeny=10\n"})
    assert "faillock deny is 10" in evaluate("config", {"faillock": {"deny": {"at_most": 5}}}, f)[0]
