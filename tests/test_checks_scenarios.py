"""Every data-shaped violation scenario really violates its baseline bound: the value the scenario
writes is judged with the code the check uses (expect.check, the files kind), in seconds, so a
scenario that went stale with a baseline change fails here and not in a 15-minute boot."""

import fnmatch
import os
import re
import shlex
import shutil
import subprocess

import pytest

from pipeline.checks import expect, scenarios
from pipeline.checks.baseline import Baseline
from pipeline.checks.facts import Facts
from pipeline.checks.kinds import KINDS

from .conftest import ROOT

# The helpers of cis_checks/scenarios.sh that set one keyed value: helper -> (kind, config source).
SETTERS = {"sshd_option": ("sshd", None), "sysctl_violate": ("sysctl", None), "kernel_param_set": ("kernel_cmdline", None),
           "login_defs_set": ("config", "login_defs"), "pwquality_local": ("config", "pwquality"),
           "journald_set": ("config", "journald"), "auditd_conf_set": ("config", "auditd"),
           "rsyslog_set": ("config", "rsyslog"), "faillock_set": ("config", "faillock")}
# Helpers that take KEY=VALUE words (one or more): helper -> kind.
PARAM_SETTERS = {"grub_cmdline_add": "kernel_cmdline"}
# Scenarios of data-shaped controls (values of a scenarios.KEYED kind) that write no value this file
# can judge, each with why that is right; any other fails test_every_scenario_of_a_data_shaped_control...
UNJUDGED = {
    "5.1.4": "deletes the AllowGroups line: the keyword unset, which no value expresses",
    "5.3.3.1.3": "deletes even_deny_root from faillock.conf: a flag unset",
    "5.3.3.2.8": "deletes enforce_for_root from pwquality's files: a flag unset",
    "1.5.3": "allows core dumps through limits.d, the control's logic-shaped part (its Python check judges it)",
    "5.4.1.5": "`useradd -D -f -1` sets INACTIVE to -1 (never expires), a number below at_most 45: the "
               "control's Python check judges it, expect.check would not",
}
VIOLATING = re.compile(r"^\$\(violating (\S+)\)$")
OCTAL = re.compile(r"^[0-7]{3,4}$")


def commands(script):
    """The simple commands of a scenario script (split at &&, ||, ; and newlines), as argument lists."""
    lexer = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    out, current = [], []
    for token in lexer:
        if token in (";", "&&", "||", "|"):
            out, current = out + [current] if current else out, []
        else:
            current.append(token)
    return out + [current] if current else out


def setting(words, derived):
    """What one command writes through a setter helper or chmod: [(kind, source, key, value)], or None
    if it is no command this file can read a value from."""
    args = [derived.get(m.group(1), f"<no violating value of {m.group(1)}>") if (m := VIOLATING.match(w)) else w
            for w in words]
    if args[0] in SETTERS and len(args) == 3:
        kind, source = SETTERS[args[0]]
        return [(kind, source, args[1].lower() if kind == "sshd" else args[1], args[2])]
    if args[0] in PARAM_SETTERS and len(args) > 1 and all("=" in a for a in args[1:]):
        return [(PARAM_SETTERS[args[0]], None, *a.split("=", 1)) for a in args[1:]]
    if args[0] == "chmod" and len(args) == 3 and OCTAL.match(args[1]):
        return [("files", None, args[2], args[1])]
    return None


def settings(scenario):
    """What a scenario writes through the setter helpers and chmod: [(kind, source, key, value)]."""
    derived = dict(scenario.violating)
    return [s for words in commands(scenario.script) for s in setting(words, derived) or []]


def unjudged(scenario, values):
    """The commands of a scenario that write no value of the control's data kinds this file can judge."""
    derived = dict(scenario.violating)
    return [" ".join(words) for words in commands(scenario.script)
            if not (found := setting(words, derived)) or any(s[0] not in values for s in found)]


def data_shaped(scenario, values):
    """The settings of a scenario that the control's data kinds judge (a logic-shaped control's own)."""
    return [s for s in settings(scenario) if s[0] in values]


def stale(scenario, values):
    """Why a data-shaped scenario does not violate its control's baseline entry (empty: it does)."""
    problems = []
    for kind, source, key, value in data_shaped(scenario, values):
        if kind == "files":
            patterns = [p for p, want in (values.get("files") or {}).items() if fnmatch.fnmatchcase(key, p) and "mode" in want]
            facts = Facts({"stat": "\n".join(f"{p}|{key}|{value}|root|root|regular file" for p in patterns)})
            if not patterns:
                problems.append(f"chmod {value} {key}: no file mode of the control's baseline entry covers {key}")
            elif not KINDS["files"].evaluate({p: {"mode": values["files"][p]["mode"]} for p in patterns}, facts):
                problems.append(f"chmod {value} {key} is within the baseline's mode for it")
            continue
        entry = values.get(kind) or {}
        entry = entry.get(source) or {} if source else entry
        if key not in entry:
            problems.append(f"{kind} {key}: the control's baseline entry does not check it")
        elif expect.check(value, entry[key]):
            problems.append(f"{kind} {key} {value!r} satisfies the baseline's {expect.describe(entry[key])}")
    return problems


@pytest.fixture(scope="module")
def catalogue_scenarios():
    baseline = Baseline.load()
    return baseline, scenarios.collect(baseline=baseline)


def test_every_data_shaped_scenario_violates_its_baseline_bound(catalogue_scenarios):
    baseline, found = catalogue_scenarios
    judged = {i: s for i, s in found.items() if data_shaped(s, baseline.values(i))}
    assert len(judged) > 60          # the sshd, sysctl, config, kernel command line and file-mode scenarios
    problems = {i: stale(s, baseline.values(i)) for i, s in judged.items()}
    assert not {i: p for i, p in problems.items() if p}, problems


def test_a_stale_scenario_is_caught(catalogue_scenarios):
    baseline, _ = catalogue_scenarios
    raised = dict(baseline.values("5.1.16"), sshd={"maxauthtries": {"at_most": 12}})
    literal = scenarios.Scenario("5.1.16", "sshd_option MaxAuthTries 10", "here")
    assert stale(literal, raised) == ["sshd maxauthtries '10' satisfies the baseline's at most 12"]
    assert stale(scenarios.Scenario("5.1.16", "sshd_option MaxSessions 10", "here"), raised) == [
        "sshd maxsessions: the control's baseline entry does not check it"]
    assert stale(scenarios.Scenario("5.1.1", "chmod 0600 /etc/ssh/sshd_config.d/50-golden-cis.conf", "here"),
                 baseline.values("5.1.1")) == [
        "chmod 0600 /etc/ssh/sshd_config.d/50-golden-cis.conf is within the baseline's mode for it"]


def test_a_derived_scenario_follows_the_baseline(catalogue_scenarios):
    baseline, found = catalogue_scenarios
    assert 'sshd_option MaxAuthTries "$(violating maxauthtries)"' == found["5.1.16"].script
    raised = dict(baseline.values("5.1.16"), sshd={"maxauthtries": {"at_most": 12}})
    derived = scenarios.Scenario("5.1.16", found["5.1.16"].script, "here", scenarios.violating_values(raised))
    assert settings(derived) == [("sshd", None, "maxauthtries", "13")] and stale(derived, raised) == []


def test_violating_prints_the_derived_value_in_the_scenario_shell(catalogue_scenarios):
    _, found = catalogue_scenarios
    prelude = os.path.join(ROOT, "cis_checks", "scenarios.sh")
    env = dict(os.environ, GOLDEN_SCENARIO="5.1.16",
               GOLDEN_VIOLATING="".join(f"{k} {v}\n" for k, v in found["5.1.16"].violating))
    run = lambda line: subprocess.run(["sh", "-e", "-c", f". {prelude}\n{line}"], env=env,  # noqa: E731
                                      capture_output=True, text=True)
    assert run("violating maxauthtries").stdout == "5\n"
    missing = run("violating maxsessions")
    assert missing.returncode != 0 and "gives no violating value of maxsessions" in missing.stderr


def test_every_scenario_of_a_data_shaped_control_writes_only_values_the_bound_test_judges(catalogue_scenarios):
    """A scenario that writes a literal with `echo` (or through a helper missing from SETTERS) is never
    judged against its bound, and goes stale unseen: every command of a data-shaped control's scenario
    must be a setter this file reads, unless UNJUDGED says why not."""
    baseline, found = catalogue_scenarios
    shaped = {i: s for i, s in found.items() if s.script and any(baseline.values(i).get(k) for k in scenarios.KEYED)}
    assert len(shaped) > 50           # the sshd, sysctl, config and kernel command line controls
    unread = {i: u for i, s in shaped.items() if (u := unjudged(s, baseline.values(i)))}
    assert {i: u for i, u in unread.items() if i not in UNJUDGED} == {}, \
        "write the value through a setter (SETTERS) derived with $(violating KEY), or say why not in UNJUDGED"
    assert set(UNJUDGED) <= set(unread), f"judged now, or gone: drop from UNJUDGED {set(UNJUDGED) - set(unread)}"


def test_a_literal_written_by_hand_is_caught():
    values = Baseline.load().values("5.3.3.1.1")
    echoed = scenarios.Scenario("5.3.3.1.1", "echo 'deny = 10' >> /etc/security/faillock.conf", "here")
    assert unjudged(echoed, values) == ["echo deny = 10 >> /etc/security/faillock.conf"]
    assert unjudged(scenarios.Scenario("5.3.3.1.1", "faillock_set deny 3", "here"), values) == []
    assert stale(scenarios.Scenario("5.3.3.1.1", "faillock_set deny 3", "here"), values) == [
        "config deny '3' satisfies the baseline's one of 5,4,3,2,1"]
    assert settings(scenarios.Scenario("1.3.1.2", "grub_cmdline_add apparmor=0 security=selinux", "here")) == [
        ("kernel_cmdline", None, "apparmor", "0"), ("kernel_cmdline", None, "security", "selinux")]


def test_a_list_of_numbers_is_violated_one_above_its_largest():
    assert expect.violating({"one_of": [5, 4, 3, 2, 1]}) == "6" and not expect.check("6", {"one_of": [5, 4, 3, 2, 1]})
    assert expect.violating({"one_of": ["YESCRYPT", "SHA512"]}) is None
    assert expect.violating({"one_of": [True, False]}) is None


# Debian 12's /etc/security/faillock.conf (libpam-modules 1.5.2-6): every setting a comment.
DEBIAN_FAILLOCK = """\
# Configuration for locking the user after multiple failed
# authentication attempts.
#
# The directory where the user files with the failure records are kept.
# The default is /var/run/faillock.
# dir = /var/run/faillock
#
# Will log the user name into the system log if the user is not found.
# Enabled if option is present.
# audit
#
# Don't print informative messages.
# Enabled if option is present.
# silent
#
# Don't log informative messages via syslog.
# Enabled if option is present.
# no_log_info
#
# Only track failed user authentications attempts for local users
# in /etc/passwd and ignore centralized (AD, IdM, LDAP, etc.) users.
# The `faillock` command will also no longer track user failed
# authentication attempts. Enabling this option will prevent a
# double-lockout scenario where a user is locked out locally and
# in the centralized mechanism.
# Enabled if option is present.
# local_users_only
#
# Deny access if the number of consecutive authentication failures
# for this user during the recent interval exceeds n tries.
# The default is 3.
# deny = 3
#
# The length of the interval during which the consecutive
# authentication failures must happen for the user account
# lock out is <replaceable>n</replaceable> seconds.
# The default is 900 (15 minutes).
# fail_interval = 900
#
# The access will be re-enabled after n seconds after the lock out.
# The value 0 has the same meaning as value `never` - the access
# will not be re-enabled without resetting the faillock
# entries by the `faillock` command.
# The default is 600 (10 minutes).
# unlock_time = 600
#
# Root account can become locked as well as regular accounts.
# Enabled if option is present.
# even_deny_root
#
# This option implies the `even_deny_root` option.
# Allow access after n seconds to root account after the
# account is locked. In case the option is not specified
# the value is the same as of the `unlock_time` option.
# root_unlock_time = 900
#
# If a group name is specified with this option, members
# of the group will be handled by this module the same as
# the root account (the options `even_deny_root>` and
# `root_unlock_time` will apply to them.
# By default, the option is not set.
# admin_group = <admin_group_name>
"""
FAILLOCK = "/etc/security/faillock.conf"
FAILLOCK_CONTROLS = ("5.3.3.1.1", "5.3.3.1.2", "5.3.3.1.3")


def faillock_after(scenario, before, harden):
    """faillock.conf after the hardening's own settings (with `harden`: lib.sh set_kv over the plan's
    faillock rows, as appliers/config.sh writes them) and the scenario, in a private mount namespace
    (a tmpfs over /etc/security: the host's file is untouched)."""
    from pipeline.image.hardening import CONFIG_WRITERS, LIBRARY, plan_rows

    rows = [r for r in plan_rows(Baseline.load(), "bastion", 2) if r[1:3] == ("config", "faillock")] if harden else []
    hardening = "".join(f"set_kv {FAILLOCK} {shlex.quote(CONFIG_WRITERS['faillock'].separator)} {r[3]} {r[4]}\n"
                        for r in rows)
    script = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"golden-faillock-scenario-{os.getpid()}.sh")
    with open(script, "w", encoding="utf-8") as fh:
        fh.write(scenarios.script([scenario]))
    harden_cmd = shlex.quote(f"GOLDEN_PROVISION=/nonexistent; . {LIBRARY}/lib.sh\n{hardening}")
    inner = (f"mount -t tmpfs tmpfs /etc/security && mount -t tmpfs tmpfs /run && cat > {FAILLOCK} && "
             f"bash -e -c {harden_cmd} && cp {FAILLOCK} /run/hardened && sh {script} && "
             f"echo '@@golden-fact@@ hardened' && cat /run/hardened && echo '@@golden-fact@@ config:faillock' && cat {FAILLOCK}")
    try:
        proc = subprocess.run(["unshare", "-m", "sh", "-c", inner], input=before, capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(script)
    assert proc.returncode == 0 and f"{scenarios.APPLY_MARK} ok {scenario.id}" in proc.stdout, proc.stdout + proc.stderr
    return Facts.parse(proc.stdout[proc.stdout.index("@@golden-fact@@ hardened"):])


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare (a mount namespace)")
@pytest.mark.parametrize("harden", [False, True], ids=["debian-default", "hardened"])
@pytest.mark.parametrize("cis_id", ["5.3.3.1.1", "5.3.3.1.2"])
def test_the_faillock_scenario_breaks_its_control_and_only_it(catalogue_scenarios, cis_id, harden):
    """The real scenario, through scenarios.sh's faillock_set, on Debian's file (only comments: the line
    is appended) and on the hardened one (the key set: replaced in place), judged by the config kind."""
    baseline, found = catalogue_scenarios
    scenario = found[cis_id]
    key, = baseline.values(cis_id)["config"]["faillock"]
    assert scenario.script == f'faillock_set {key} "$(violating {key})"'
    facts = faillock_after(scenario, DEBIAN_FAILLOCK, harden)
    judge = {i: KINDS["config"].evaluate(baseline.values(i)["config"], facts) for i in FAILLOCK_CONTROLS}
    value = dict(scenario.violating)[key]
    assert judge[cis_id] == [f"faillock {key} is {value}, expected {expect.describe(baseline.values(cis_id)['config']['faillock'][key])}"]
    after, before = facts.raw("config:faillock").splitlines(), facts.raw("hardened").splitlines()
    assert [line for line in after if re.match(rf"\s*{key}\b", line)] == [f"{key} = {value}"]
    assert [line for line in after if line.startswith("#")] == [line for line in DEBIAN_FAILLOCK.splitlines()
                                                                if line.startswith("#")]
    if harden:      # the hardened file passed every faillock control; now only the scenario's fails
        assert before != after and len(after) == len(before)
        assert {i: f for i, f in judge.items() if f} == {cis_id: judge[cis_id]}
    else:
        assert after == DEBIAN_FAILLOCK.splitlines() + [f"{key} = {value}"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare (a mount namespace)")
def test_faillock_set_replaces_a_hand_edited_setting_and_leaves_similar_keys():
    edited = "deny=4\n   unlock_time   =   1200\n# unlock_time = 600\nroot_unlock_time = 900\neven_deny_root\n"
    facts = faillock_after(scenarios.Scenario("5.3.3.1.2", "faillock_set unlock_time 899 && faillock_set deny 6", "here"),
                           edited, harden=False)
    assert facts.raw("config:faillock").splitlines() == [
        "deny = 6", "unlock_time = 899", "# unlock_time = 600", "root_unlock_time = 900", "even_deny_root"]
