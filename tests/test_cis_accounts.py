"""The Python controls of CIS 5.3.1, 5.4 and 7.1.11-7.2.10 against facts in the collector's own
format, each compliant and violating; and the accounts baseline draft resolves into a hardening plan."""

import os

import pytest
import yaml

from pipeline.checks.baseline import Baseline
from pipeline.checks.facts import FactError
from pipeline.image.hardening import plan_rows
from pipeline.paths import CHECKS_DIR

from .checkhelpers import check_module as load
from .checkhelpers import facts, findings

TEST_USER = "golden-test"
BASELINE = os.path.join(CHECKS_DIR, "baseline.yaml")


pam = load("test_5_3_pam")
accounts = load("test_5_4_accounts")
filesystem = load("test_7_1_filesystem")
users = load("test_7_2_users_groups")
with open(BASELINE, encoding="utf-8") as fh:
    CONTROLS = yaml.safe_load(fh)["controls"]


PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
_chrony:x:102:109:Chrony daemon,,,:/var/lib/chrony:/usr/sbin/nologin
alice:x:1001:1001:Alice:/home/alice:/bin/bash
golden-test:x:1000:1000:golden pipeline (ephemeral):/home/golden-test:/bin/bash"""
GROUP = """root:x:0:
daemon:x:1:
lp:x:7:
shadow:x:42:
nogroup:x:65534:
_chrony:x:109:
alice:x:1001:
golden-test:x:1000:"""
SHADOW = """root:*:20783:0:99999:7:::
daemon:*:20783:0:99999:7:::
sync:*:20783:0:99999:7:::
lp:*:20783:0:99999:7:::
nobody:*:20783:0:99999:7:::
_chrony:!:20783::::::
alice:$y$j9T$salt$hash:20783:1:365:7:45::
golden-test:!:20783:0:365:7:::"""
SHELLS = "/bin/sh\n/bin/bash\n/usr/bin/bash"
ACCOUNTS = dict(passwd=PASSWD, group=GROUP, shadow=SHADOW, login_shells=SHELLS)


def edit(text, old, new):
    assert old in text
    return text.replace(old, new)


# 5.3.1 PAM packages

@pytest.mark.parametrize("test, package", [(pam.test_pam_runtime_is_current, "libpam-runtime"),
                                           (pam.test_pam_modules_are_current, "libpam-modules")])
def test_pam_package_versions(test, package):
    values = CONTROLS[test.pytestmark[0].args[0]]
    current = facts(packages=f"{package}\tinstalled\t1.5.2-6+deb12u2")
    assert findings(test, current, values) == []
    old = facts(packages=f"{package}\tinstalled\t1.5.2-5")
    assert findings(test, old, values) == [f"package {package} is 1.5.2-5, older than 1.5.2-6"]
    assert findings(test, facts(packages="libpam0g\tinstalled\t1.5.2-6"), values) == [f"package {package} is not installed"]


# 5.4.1 password ageing: the default and every account with a password

LOGIN_DEFS = "PASS_MAX_DAYS\t365\nPASS_WARN_AGE\t7\nUID_MIN\t\t\t 1000\n"


def test_password_expiration_default_and_accounts():
    values = CONTROLS["5.4.1.1"]
    ok = facts(shadow=SHADOW, config__login_defs=LOGIN_DEFS)
    assert findings(accounts.test_password_expiration, ok, values, TEST_USER) == []
    lax = facts(shadow=edit(SHADOW, "1:365:7:45", "1:99999:7:45"), config__login_defs=LOGIN_DEFS)
    assert findings(accounts.test_password_expiration, lax, values, TEST_USER) == [
        "alice: PASS_MAX_DAYS in /etc/shadow is 99999, expected at most 365"]
    never = facts(shadow=edit(SHADOW, "1:365:7:45", "1::7:45"), config__login_defs="PASS_MAX_DAYS -1\n")
    assert findings(accounts.test_password_expiration, never, values, TEST_USER) == [
        "login_defs PASS_MAX_DAYS is -1, expected at most 365",
        "alice: PASS_MAX_DAYS in /etc/shadow is unset, expected at most 365"]
    # locked accounts have no password to expire; the test account is not judged
    test_account = facts(shadow=edit(SHADOW, "golden-test:!:20783:0:365", "golden-test:$y$x:20783:0:99999"),
                         config__login_defs=LOGIN_DEFS)
    assert findings(accounts.test_password_expiration, test_account, values, TEST_USER) == []


def test_password_warning_and_inactive_lock():
    warn = facts(shadow=edit(SHADOW, "1:365:7:45", "1:365:3:45"), config__login_defs=LOGIN_DEFS)
    assert findings(accounts.test_password_expiry_warning, warn, CONTROLS["5.4.1.3"], TEST_USER) == [
        "alice: PASS_WARN_AGE in /etc/shadow is 3, expected at least 7"]
    ok = facts(shadow=SHADOW, config__useradd="GROUP=100\nINACTIVE=45\n")
    assert findings(accounts.test_inactive_password_lock, ok, CONTROLS["5.4.1.5"], TEST_USER) == []
    never = facts(shadow=edit(SHADOW, "7:45::", "7:::"), config__useradd="INACTIVE=-1\n")
    assert findings(accounts.test_inactive_password_lock, never, CONTROLS["5.4.1.5"], TEST_USER) == [
        "useradd INACTIVE is -1, expected at most 45", "alice: INACTIVE in /etc/shadow is unset, expected at most 45"]


def test_password_change_dates():
    today = 20783 * 86400 + 3600
    assert findings(accounts.test_password_changes_in_past, facts(shadow=SHADOW, clock=str(today)), TEST_USER) == []
    future = facts(shadow=edit(SHADOW, "lp:*:20783", "lp:*:20813"), clock=str(today))
    assert findings(accounts.test_password_changes_in_past, future, TEST_USER) == [
        "lp: last password change is 2026-12-26, in the future"]


# 5.4.2 root and system accounts

def test_uid_and_gid_0():
    f = facts(**ACCOUNTS)
    assert findings(accounts.test_root_only_uid_0, f, TEST_USER) == []
    assert findings(accounts.test_root_only_gid_0, f, TEST_USER) == []
    assert findings(accounts.test_root_only_gid_0_group, f) == []
    toor = facts(passwd=PASSWD + "\ntoor:x:0:100::/:/usr/sbin/nologin")
    assert findings(accounts.test_root_only_uid_0, toor, TEST_USER) == ["toor has UID 0"]
    gid0 = facts(passwd=edit(PASSWD, "lp:x:7:7:", "lp:x:7:0:"))
    assert findings(accounts.test_root_only_gid_0, gid0, TEST_USER) == ["lp has primary GID 0"]
    group0 = facts(group=GROUP + "\nrootgrp2:x:0:")
    assert findings(accounts.test_root_only_gid_0_group, group0) == ["group rootgrp2 has GID 0"]


def test_root_access_controlled():
    assert findings(accounts.test_root_access_controlled, facts(shadow=SHADOW)) == []
    hashed = facts(shadow=edit(SHADOW, "root:*:", "root:$y$j9T$x$y:"))
    assert findings(accounts.test_root_access_controlled, hashed) == []
    empty = facts(shadow=edit(SHADOW, "root:*:", "root::"))
    assert findings(accounts.test_root_access_controlled, empty) == ["root's password is empty"]


def test_root_path():
    good = "dir|/usr/local/sbin|755|root\ndir|/usr/bin|755|root"
    assert findings(accounts.test_root_path_integrity, facts(root_path=good)) == []
    assert findings(accounts.test_root_path_integrity, facts(root_path="")) == [
        "could not read root's PATH from a root login shell"]
    bad = good + "\nempty|||\ndir|.|700|root\nabsent|/opt/tools||\ndir|/srv/bin|775|root\ndir|/home/alice/bin|755|alice"
    assert findings(accounts.test_root_path_integrity, facts(root_path=bad)) == [
        "root's PATH has an empty entry, which means the current directory",
        "root's PATH has the relative entry '.'",
        "/opt/tools in root's PATH does not exist",
        "/srv/bin in root's PATH is writable by group or others (mode 0775)",
        "/home/alice/bin in root's PATH is owned by alice, not root"]


@pytest.mark.parametrize("umask, found", [("0027", []), ("0077", []),
                                          ("0022", ["the umask of root's login shell is 0022, expected 0027 or more restrictive"])])
def test_root_umask(umask, found):
    f = facts(root_env=f"PATH=/usr/sbin:/usr/bin\nUMASK={umask}")
    assert findings(accounts.test_root_umask, f, CONTROLS["5.4.2.6"]) == found


def test_system_accounts_have_no_login_shell():
    f = facts(config__login_defs=LOGIN_DEFS, **ACCOUNTS)
    assert findings(accounts.test_system_accounts_no_shell, f, TEST_USER) == []
    shell = facts(config__login_defs=LOGIN_DEFS, **dict(ACCOUNTS, passwd=edit(
        PASSWD, "/var/lib/chrony:/usr/sbin/nologin", "/var/lib/chrony:/bin/sh").replace(
        "/nonexistent:/usr/sbin/nologin", "/nonexistent:/bin/bash")))
    assert findings(accounts.test_system_accounts_no_shell, shell, TEST_USER) == [
        "nobody (UID 65534) has the login shell /bin/bash", "_chrony (UID 102) has the login shell /bin/sh"]


def test_no_login_shell_at_all_is_an_error_not_a_pass():
    f = facts(config__login_defs=LOGIN_DEFS, **dict(ACCOUNTS, login_shells=""))
    with pytest.raises(FactError, match="login_shells.*came back empty"):
        accounts.test_system_accounts_no_shell(f, TEST_USER)
    with pytest.raises(FactError, match="login_shells.*came back empty"):
        users.test_interactive_homes(facts(homes=HOMES, **dict(ACCOUNTS, login_shells="")), TEST_USER)


def test_accounts_without_shell_are_locked():
    f = facts(**ACCOUNTS)
    assert findings(accounts.test_no_shell_accounts_locked, f, TEST_USER) == []
    unlocked = facts(**dict(ACCOUNTS, shadow=edit(SHADOW, "lp:*:", "lp:$y$j9T$x$y:")))
    assert findings(accounts.test_no_shell_accounts_locked, unlocked, TEST_USER) == [
        "lp has no login shell (/usr/sbin/nologin) but its password is not locked"]


# 5.4.3 user default environment

def test_nologin_not_in_shells():
    ok = facts(content="### /etc/shells\n# /etc/shells: valid login shells\n/bin/sh\n/bin/bash")
    assert findings(accounts.test_nologin_not_a_shell, ok) == []
    listed = facts(content="### /etc/shells\n/bin/bash\n/usr/sbin/nologin")
    assert findings(accounts.test_nologin_not_a_shell, listed) == ["/etc/shells lists /usr/sbin/nologin"]


@pytest.mark.parametrize("declared, found", [
    ('declare -rx TMOUT="900"', []),
    ('declare -rx TMOUT="3600"', ["TMOUT is 3600, expected 1 to 900 seconds"]),
    ('declare -x TMOUT="600"', ["TMOUT is not read-only: a user can lift it"]),
    ('declare -r TMOUT="900"', ["TMOUT is not exported"]),
    ("su: warning: cannot change directory to /nonexistent: No such file or directory\n"
     "bash: line 1: declare: TMOUT: not found", ["TMOUT is not set in login shells (bash: line 1: declare: TMOUT: not found)"]),
])
def test_shell_timeout(declared, found):
    assert findings(accounts.test_shell_timeout, facts(login_tmout=declared), CONTROLS["5.4.3.2"]) == found


def test_default_umask():
    env = "su: warning: cannot change directory to /nonexistent: No such file or directory\nUMASK={}\nTMOUT=900\n1"
    assert findings(accounts.test_default_umask, facts(login_env=env.format("0027")), CONTROLS["5.4.3.3"]) == []
    assert findings(accounts.test_default_umask, facts(login_env=env.format("0022")), CONTROLS["5.4.3.3"]) == [
        "the umask of users' login shells is 0022, expected 027 or more restrictive"]


# 7.1 files nobody should write or own

def test_world_writable_and_unowned():
    assert findings(filesystem.test_world_writable_secured, facts(world_writable="@@scan-complete@@")) == []
    assert findings(filesystem.test_world_writable_secured, facts(world_writable="/srv/local-upload\n@@scan-complete@@")) == [
        "/srv/local-upload is writable by everyone (a file, or a directory without the sticky bit)"]
    assert findings(filesystem.test_no_unowned_files, facts(unowned="@@scan-complete@@")) == []
    assert findings(filesystem.test_no_unowned_files, facts(unowned="/var/tmp/left-behind\n@@scan-complete@@")) == [
        "/var/tmp/left-behind has an owner or group that does not exist"]


# 7.2 the account and group databases

def test_shadowed_and_nonempty_passwords():
    f = facts(**ACCOUNTS)
    assert findings(users.test_shadowed_passwords, f, TEST_USER) == []
    assert findings(users.test_no_empty_passwords, f, TEST_USER) == []
    unshadowed = facts(passwd=edit(PASSWD, "lp:x:", "lp:*:"))
    assert findings(users.test_shadowed_passwords, unshadowed, TEST_USER) == [
        "lp has its password in /etc/passwd, not /etc/shadow"]
    empty = facts(shadow=edit(SHADOW, "lp:*:", "lp::"))
    assert findings(users.test_no_empty_passwords, empty, TEST_USER) == ["lp has an empty password"]


def test_groups_of_accounts():
    f = facts(**ACCOUNTS)
    assert findings(users.test_primary_groups_exist, f, TEST_USER) == []
    assert findings(users.test_shadow_group_empty, f, TEST_USER) == []
    missing = facts(passwd=edit(PASSWD, "lp:x:7:7:", "lp:x:7:4242:"), group=GROUP)
    assert findings(users.test_primary_groups_exist, missing, TEST_USER) == [
        "lp has primary GID 4242, which is not in /etc/group"]
    members = facts(passwd=edit(PASSWD, "lp:x:7:7:", "lp:x:7:42:"), group=edit(GROUP, "shadow:x:42:", "shadow:x:42:alice"))
    assert findings(users.test_shadow_group_empty, members, TEST_USER) == [
        "alice is a member of group shadow", "lp has group shadow as its primary group"]


def test_duplicates():
    f = facts(**ACCOUNTS)
    for test in (users.test_no_duplicate_uids, users.test_no_duplicate_user_names):
        assert findings(test, f, TEST_USER) == []
    for test in (users.test_no_duplicate_gids, users.test_no_duplicate_group_names):
        assert findings(test, f) == []
    dup_uid = facts(passwd=PASSWD + "\ndaemon2:x:1:1002::/:/usr/sbin/nologin")
    assert findings(users.test_no_duplicate_uids, dup_uid, TEST_USER) == ["UID 1 is used by daemon, daemon2"]
    dup_gid = facts(group=GROUP + "\ndaemon3:x:1:")
    assert findings(users.test_no_duplicate_gids, dup_gid) == ["GID 1 is used by groups daemon, daemon3"]
    dup_user = facts(passwd=PASSWD + "\nlp:x:4243:7:lp:/var/spool/lpd:/usr/sbin/nologin")
    assert findings(users.test_no_duplicate_user_names, dup_user, TEST_USER) == ["user name lp is defined more than once"]
    dup_group = facts(group=GROUP + "\nlp:x:4244:")
    assert findings(users.test_no_duplicate_group_names, dup_group) == ["group name lp is defined more than once"]


HOMES = """root|0|/bin/bash|/root|700|root|root
root|0|/bin/bash|/root/.bashrc|644|root|root
_chrony|102|/usr/sbin/nologin|/var/lib/chrony|750|_chrony|_chrony
alice|1001|/bin/bash|/home/alice|750|alice|alice
alice|1001|/bin/bash|/home/alice/.profile|644|alice|alice
alice|1001|/bin/bash|/home/alice/.bash_history|600|alice|alice
golden-test|1000|/bin/bash|/home/golden-test|755|golden-test|golden-test
golden-test|1000|/bin/bash|/home/golden-test/.forward|666|golden-test|golden-test"""


def test_interactive_homes():
    f = facts(homes=HOMES, **ACCOUNTS)
    assert findings(users.test_interactive_homes, f, TEST_USER) == []
    open_home = facts(homes=edit(HOMES, "/root|700|root|root", "/root|755|root|root"), **ACCOUNTS)
    assert findings(users.test_interactive_homes, open_home, TEST_USER) == [
        "root: home directory /root has mode 0755, more permissive than 0750"]
    gone = facts(homes=edit(HOMES, "alice|1001|/bin/bash|/home/alice|750|alice|alice\n", ""), **ACCOUNTS)
    assert findings(users.test_interactive_homes, gone, TEST_USER) == ["alice: home directory /home/alice does not exist"]
    others = facts(homes=edit(HOMES, "/home/alice|750|alice|alice", "/home/alice|750|root|alice"), **ACCOUNTS)
    assert findings(users.test_interactive_homes, others, TEST_USER) == [
        "alice: home directory /home/alice is owned by root"]


def test_interactive_dot_files():
    f = facts(homes=HOMES, **ACCOUNTS)
    assert findings(users.test_interactive_dot_files, f, TEST_USER) == []
    bad = HOMES + "\nroot|0|/bin/bash|/root/.forward|644|root|root\nalice|1001|/bin/bash|/home/alice/.netrc|644|alice|alice"
    bad = edit(bad, "/home/alice/.profile|644|alice|alice", "/home/alice/.profile|664|alice|root")
    assert findings(users.test_interactive_dot_files, facts(homes=bad, **ACCOUNTS), TEST_USER) == [
        "/root/.forward exists",
        "/home/alice/.netrc has mode 0644, more permissive than 0600",
        "/home/alice/.profile has mode 0664, more permissive than 0644",
        "/home/alice/.profile is owned by alice:root, expected alice:alice"]


# The baseline's account values reach the hardening plan.

def test_account_values_reach_the_plan():
    path = BASELINE
    rows = plan_rows(Baseline.load(str(path)), "bastion", 2)
    assert ("5.3.3.3.1", "pam", "common-password", "password", "pam_pwhistory.so", "remember=24", "present") in rows
    assert ("5.3.3.1.1", "config", "faillock", "deny", "5") in rows
    assert ("5.4.3.2", "params", "tmout", "900") in rows
    assert not any(r[0] == "5.3.3.1.3" for r in plan_rows(Baseline.load(str(path)), "general-purpose", 1))


def test_an_unfinished_filesystem_scan_is_an_error_not_a_pass():
    with pytest.raises(FactError, match="world_writable scan did not finish"):
        filesystem.test_world_writable_secured(facts(world_writable="/srv/a"))
