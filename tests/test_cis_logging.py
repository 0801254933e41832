"""Section 6 Python controls (logging, auditd) judge facts in the collector's format: compliant and
violating; and the section's baseline draft loads and resolves into a hardening plan."""

import os

import pytest
import yaml

from pipeline.checks.baseline import Baseline
from pipeline.image.hardening import plan_rows
from pipeline.paths import CHECKS_DIR

from .checkhelpers import check_module as module
from .checkhelpers import facts, findings

logging_controls = module("test_6_1_logging")
auditd_controls = module("test_6_2_auditd")
integrity_controls = module("test_6_3_integrity")


def baseline_values():
    """The baseline's values for the logging controls."""
    with open(os.path.join(CHECKS_DIR, "baseline.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["controls"]


RSYSLOG_OK = '''module(load="imuxsock")
#module(load="imtcp")
#input(type="imtcp" port="514")
$FileCreateMode 0640
'''
SS_OK = 'udp UNCONN 0 0 127.0.0.1:323 0.0.0.0:* users:(("chronyd",pid=500,fd=5))'


def test_rsyslog_receiving_nothing_passes():
    f = facts(**{"config:rsyslog": RSYSLOG_OK, "listening": SS_OK})
    assert findings(logging_controls.test_rsyslog_does_not_receive_remote_logs, f) == []


def test_rsyslog_network_input_and_listener_fail():
    f = facts(**{"config:rsyslog": RSYSLOG_OK + 'module(load="imtcp")\n$UDPServerRun 514\n',
                 "listening": SS_OK + '\ntcp LISTEN 0 25 0.0.0.0:514 0.0.0.0:* users:(("rsyslogd",pid=9,fd=6))'})
    found = findings(logging_controls.test_rsyslog_does_not_receive_remote_logs, f)
    assert found == ['rsyslog configuration receives from the network: module(load="imtcp")',
                     "rsyslog configuration receives from the network: $UDPServerRun 514",
                     "rsyslogd listens on tcp 0.0.0.0:514"]


LOGS_OK = """/var/log/README|644|root|root
/var/log/wtmp|664|root|utmp
/var/log/btmp|660|root|utmp
/var/log/auth.log|640|root|adm
/var/log/journal/abc/system.journal|640|root|systemd-journal
/var/log/audit/audit.log|600|root|root
/var/log/apt/term.log|640|root|adm"""


# Debian 12's stanzas as the hardened image has them (dpkg's `create 644` made 0640), and the web image's nginx.
LOGROTATE_OK = """### /etc/logrotate.conf
weekly
rotate 4
create
include /etc/logrotate.d
### /etc/logrotate.d/btmp
/var/log/btmp {
    missingok
    monthly
    create 0660 root utmp
    rotate 1
}
### /etc/logrotate.d/dpkg
/var/log/dpkg.log {
	monthly
	create 0640 root root
}
### /etc/logrotate.d/unattended-upgrades
/var/log/unattended-upgrades/unattended-upgrades.log
/var/log/unattended-upgrades/unattended-upgrades-dpkg.log
{
  rotate 6
  monthly
}
### /etc/logrotate.d/rsyslog
/var/log/syslog
/var/log/auth.log
{
	rotate 4
	sharedscripts
	postrotate
		/usr/lib/rsyslog/rsyslog-rotate { create 0666 nobody nogroup }
	endscript
}
### /etc/logrotate.d/nginx
/var/log/nginx/*.log {
	daily
	create 0640 www-data adm
	copytruncate
}
### /etc/logrotate.d/chrony
/var/log/chrony/*.log {
    nocreate
}"""

# Debian's own nginx stanza: nginx reopens its logs at postrotate and hands them to its worker user.
NGINX_STOCK = """
### /etc/logrotate.d/nginx-stock
/var/log/nginx/*.log {
	daily
	create 0640 www-data adm
	sharedscripts
	postrotate
		invoke-rc.d nginx rotate >/dev/null 2>&1
	endscript
}
### /etc/logrotate.d/app
"/var/log/app.log" /var/log/other.log {
    create 0644 root adm
}"""


def test_log_files_within_their_class_pass():
    values = baseline_values()["6.1.4.1"]
    f = facts(var_log_files=LOGS_OK, logrotate_conf=LOGROTATE_OK)
    assert findings(logging_controls.test_log_files_access, f, values) == []


def test_files_logrotate_will_create_beyond_their_class_fail():
    values = baseline_values()["6.1.4.1"]
    f = facts(var_log_files=LOGS_OK, logrotate_conf=LOGROTATE_OK + NGINX_STOCK)
    assert findings(logging_controls.test_log_files_access, f, values) == [
        "/var/log/nginx/*.log as logrotate creates it (/etc/logrotate.d/nginx-stock) is owned by www-data, "
        "expected root or syslog",
        "/var/log/app.log as logrotate creates it (/etc/logrotate.d/app) has mode 0644, more permissive than 0640",
        "/var/log/other.log as logrotate creates it (/etc/logrotate.d/app) has mode 0644, more permissive than 0640"]


def test_a_default_create_in_logrotate_conf_reaches_every_stanza():
    values = baseline_values()["6.1.4.1"]
    conf = "### /etc/logrotate.conf\ncreate 0644 root root\ninclude /etc/logrotate.d\n" \
           "### /etc/logrotate.d/apt\n/var/log/apt/term.log {\n  rotate 12\n}\n" \
           "### /etc/logrotate.d/quiet\n/var/log/quiet.log {\n  copytruncate\n}"
    assert findings(logging_controls.test_log_files_access, facts(var_log_files=LOGS_OK, logrotate_conf=conf),
                    values) == ["/var/log/apt/term.log as logrotate creates it (/etc/logrotate.d/apt) has mode 0644, "
                                "more permissive than 0640"]


def test_log_files_beyond_their_class_fail():
    values = baseline_values()["6.1.4.1"]
    bad = LOGS_OK + "\n/var/log/dpkg.log|644|root|root\n/var/log/wtmp.1|666|root|utmp\n" \
                    "/var/log/journal/abc/user-1000.journal|640|root|users\n/var/log/app.log|600|nobody|root"
    assert findings(logging_controls.test_log_files_access, facts(var_log_files=bad, logrotate_conf=LOGROTATE_OK),
                    values) == [
        "/var/log/dpkg.log has mode 0644, more permissive than 0640",
        "/var/log/wtmp.1 has mode 0666, more permissive than 0664",
        "/var/log/journal/abc/user-1000.journal has group users, expected root or systemd-journal",
        "/var/log/app.log is owned by nobody, expected root or syslog"]


SUDO_RULE = "-w /var/log/sudo.log -p wa -k sudo_log_file"


def test_sudo_log_watched_passes():
    f = facts(sudoers='### /etc/sudoers\nDefaults\tuse_pty\nDefaults logfile="/var/log/sudo.log"',
              audit_loaded=SUDO_RULE, audit_files=f"### /etc/audit/rules.d/50.rules\n{SUDO_RULE}")
    assert findings(auditd_controls.test_sudo_log_file_changes_are_collected, f, baseline_values()["6.2.3.3"]) == []


def test_sudo_log_unwatched_or_missing_fails():
    other = facts(sudoers="### /etc/sudoers.d/10\nDefaults use_pty, logfile=/var/log/sudo-other.log",
                  audit_loaded=SUDO_RULE, audit_files="### /etc/audit/rules.d/50.rules\n")
    assert findings(auditd_controls.test_sudo_log_file_changes_are_collected, other, baseline_values()["6.2.3.3"]) == [
        f"audit rule not in /etc/audit/rules.d: {SUDO_RULE}",
        "sudo logs to /var/log/sudo-other.log, which no audit rule watches"]
    none = facts(sudoers="### /etc/sudoers\n# Defaults logfile=/var/log/sudo.log", audit_loaded=SUDO_RULE,
                 audit_files=f"### /etc/audit/rules.d/50.rules\n{SUDO_RULE}")
    assert "sudo has no log file" in findings(auditd_controls.test_sudo_log_file_changes_are_collected, none,
                                              baseline_values()["6.2.3.3"])[0]


def privileged(path):
    return f"-a always,exit -S all -F path={path} -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged"


def test_every_setuid_program_audited_passes():
    rules = f"{privileged('/usr/bin/sudo')}\n{privileged('/usr/bin/passwd')}"
    f = facts(suid_sgid="/usr/bin/passwd\n/usr/bin/sudo\n@@scan-complete@@", audit_loaded=rules,
              audit_files=f"### /etc/audit/rules.d/50-golden-privileged.rules\n# header\n{rules}")
    assert findings(auditd_controls.test_privileged_commands_are_collected, f, baseline_values()["6.2.3.6"]) == []


def test_unaudited_setuid_program_fails():
    rule = privileged("/usr/bin/sudo")
    f = facts(suid_sgid="/usr/bin/sudo\n/usr/local/bin/tool\n@@scan-complete@@", audit_loaded=rule,
              audit_files=f"### /etc/audit/rules.d/50-golden-privileged.rules\n{rule}")
    assert findings(auditd_controls.test_privileged_commands_are_collected, f, baseline_values()["6.2.3.6"]) == [
        f"audit rule not loaded: {privileged('/usr/local/bin/tool')}",
        f"audit rule not in /etc/audit/rules.d: {privileged('/usr/local/bin/tool')}"]


STATUS = "enabled {}\nfailure 1\npid 246\nbacklog_limit 8192"


def test_locked_audit_rules_pass():
    f = facts(audit_status=STATUS.format(2),
              audit_files="### /etc/audit/rules.d/audit.rules\n-D\n-b 8192\n"
                          "### /etc/audit/rules.d/99-golden-immutable.rules\n# header\n-e 2")
    assert findings(auditd_controls.test_audit_configuration_is_immutable, f, baseline_values()["6.2.3.20"]) == []


@pytest.mark.parametrize("enabled, files, expected", [
    (1, "### /etc/audit/rules.d/99.rules\n-e 2", "auditctl -s reports enabled 1, expected 2"),
    (2, "### /etc/audit/rules.d/50.rules\n-e 2\n### /etc/audit/rules.d/60.rules\n-e 1",
     "the last -e in /etc/audit/rules.d is 1, expected -e 2"),
    (2, "### /etc/audit/rules.d/audit.rules\n-D", "the last -e in /etc/audit/rules.d is (none), expected -e 2"),
])
def test_unlocked_audit_rules_fail(enabled, files, expected):
    f = facts(audit_status=STATUS.format(enabled), audit_files=files)
    assert findings(auditd_controls.test_audit_configuration_is_immutable, f, baseline_values()["6.2.3.20"]) == [expected]


AIDE_PACKAGES = "aide\tinstalled\t0.18.3\naide-common\tinstalled\t0.18.3"


def test_aide_installed_with_database_or_init_timer_passes():
    scheduled = facts(packages=AIDE_PACKAGES, stat="/var/lib/aide/aide.db|absent",
                      unit_files="golden-aide-init.timer enabled enabled")
    assert findings(integrity_controls.test_aide_installed_with_database, scheduled, baseline_values()["6.3.1"]) == []
    built = facts(packages=AIDE_PACKAGES, unit_files="",
                  stat="/var/lib/aide/aide.db|/var/lib/aide/aide.db|600|root|root|regular file")
    assert findings(integrity_controls.test_aide_installed_with_database, built, baseline_values()["6.3.1"]) == []


def test_aide_missing_or_without_database_fails():
    removed = facts(packages="aide-common\tinstalled\t0.18.3", stat="/var/lib/aide/aide.db|absent",
                    unit_files="golden-aide-init.timer disabled enabled")
    assert findings(integrity_controls.test_aide_installed_with_database, removed, baseline_values()["6.3.1"]) == [
        "package aide is not installed",
        "AIDE has no database (/var/lib/aide/aide.db) and golden-aide-init.timer, which builds it, is disabled"]


AIDE_TOOLS = "\n".join(f"/etc/aide/aide.conf.d/70_golden_cis_audit_tools:/usr/sbin/{t} p+i+n+u+g+s+b+acl+xattrs+sha512"
                       for t in ("auditctl", "auditd", "ausearch", "aureport", "autrace", "augenrules"))


def test_audit_tools_protected_by_aide_passes():
    f = facts(aide_sbin_rules=AIDE_TOOLS + "\n/etc/aide/aide.conf.d/70_golden_cis_audit_tools.dpkg-old:/usr/sbin/auditd p")
    assert findings(integrity_controls.test_audit_tools_protected_by_aide, f, baseline_values()["6.3.3"]) == []


def test_audit_tools_weakly_or_not_protected_fail():
    weak = AIDE_TOOLS.replace("autrace p+i+n+u+g+s+b+acl+xattrs+sha512", "autrace p+i+n+u+g+s+b").replace(
        "/usr/sbin/augenrules", "/usr/sbin/augenrules-old") + "\n/etc/aide/aide.conf:=/usr/sbin/auditctl$ p+sha256"
    assert findings(integrity_controls.test_audit_tools_protected_by_aide, facts(aide_sbin_rules=weak),
                    baseline_values()["6.3.3"]) == ["AIDE checks /usr/sbin/auditctl without acl+b+g+i+n+s+sha512+u+xattrs",
                                          "AIDE checks /usr/sbin/autrace without acl+sha512+xattrs",
                                          "AIDE has no selection line for /usr/sbin/augenrules"]


def test_logging_controls_reach_the_plan():
    baseline = Baseline.load(os.path.join(CHECKS_DIR, "baseline.yaml"))
    level1 = {row[0] for row in plan_rows(baseline, "general-purpose", 1)}
    level2 = {row[0] for row in plan_rows(baseline, "bastion", 2)}
    assert {"6.1.2.4", "6.1.4.1", "6.3.1"} <= level1 and not any(i.startswith("6.2.") for i in level1)
    assert {"6.2.3.6", "6.2.3.20", "6.2.4.10"} <= level2 and "6.1.2.2" not in level2
