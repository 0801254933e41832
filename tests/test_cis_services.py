"""The services sections' Python controls (2.1.21, 2.3.3, 4.3, 5.2) on facts in the collector's own
format: each shown compliant and violating."""

import json

import pytest

from .checkhelpers import check_module, facts, findings

mta, chrony, fw, sudo = (check_module(n) for n in ("test_2_1_mta", "test_2_3_time", "test_4_firewall", "test_5_2_sudo"))


# 2.1.21 -----------------------------------------------------------------------------------------

SS = """udp UNCONN 0 0 127.0.0.1:323 0.0.0.0:* users:(("chronyd",pid=482,fd=5))
tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=483,fd=3))
tcp LISTEN 0 100 127.0.0.1:25 0.0.0.0:* users:(("master",pid=900,fd=13))
tcp LISTEN 0 100 [::1]:25 [::]:* users:(("master",pid=900,fd=14))"""
MTA = {"params": {"ports": [25, 465, 587]}}


def test_mta_on_loopback_only_passes():
    assert findings(mta.test_mta_local_only, facts=facts(listening=SS), control_values=MTA) == []


@pytest.mark.parametrize("local", ["0.0.0.0:25", "*:587", "[::]:465", "10.0.2.15%ens3:25"])
def test_mta_on_another_address_fails(local):
    f = facts(listening=SS + f"\ntcp LISTEN 0 100 {local} *:* users:((\"exim4\",pid=7,fd=3))")
    (found,) = findings(mta.test_mta_local_only, facts=f, control_values=MTA)
    assert found.startswith(f"{local} is listening") and "exim4" in found


# 2.3.3 ------------------------------------------------------------------------------------------

CHRONY = ("### chronyd -p\nconfdir /etc/chrony/conf.d\nsourcedir /etc/chrony/sources.d\n"
          "driftfile /var/lib/chrony/chrony.drift\n### /etc/chrony/sources.d/golden.sources\nserver 10.0.2.2 iburst")
PS = "_chrony chronyd /usr/sbin/chronyd -F 1\nroot sshd sshd: /usr/sbin/sshd -D [listener]"


def test_chrony_authorized_servers():
    want = {"params": {"servers": ["10.0.2.2"]}}
    assert findings(chrony.test_chrony_authorized_timeservers, facts=facts(chrony_config=CHRONY),
                    control_values=want) == []
    pooled = facts(chrony_config=CHRONY.replace("driftfile", "pool 2.debian.pool.ntp.org iburst\ndriftfile"))
    (found,) = findings(chrony.test_chrony_authorized_timeservers, facts=pooled, control_values=want)
    assert "chronyd -p: `pool 2.debian.pool.ntp.org iburst` is not an authorized time server" in found
    none = facts(chrony_config=CHRONY.split("### /etc")[0])
    assert findings(chrony.test_chrony_authorized_timeservers, facts=none, control_values=want) == [
        "chrony has no server, pool or peer configured"]


def test_chrony_runs_as_its_user_now_and_at_next_start():
    want = {"params": {"user": "_chrony"}}
    ok = facts(chrony_config=CHRONY, processes=PS)
    assert findings(chrony.test_chrony_runs_as_chrony_user, facts=ok, control_values=want) == []
    as_root = facts(chrony_config=CHRONY + "\nuser root", processes=PS.replace("_chrony", "root"))
    found = findings(chrony.test_chrony_runs_as_chrony_user, facts=as_root, control_values=want)
    assert found[0] == "chronyd runs as root: /usr/sbin/chronyd -F 1"
    assert "the next start runs chronyd as root" in found[1]


# 4.3 --------------------------------------------------------------------------------------------

def rule(chain, *expr):
    return {"rule": {"family": "inet", "table": "filter", "chain": chain, "handle": 9, "expr": list(expr)}}


def match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


IIF_LO = rule("input", match({"meta": {"key": "iif"}}, "lo"), {"accept": None})
SPOOF4 = rule("input", match({"payload": {"protocol": "ip", "field": "saddr"}},
                             {"prefix": {"addr": "127.0.0.0", "len": 8}}),
              {"counter": {"packets": 0, "bytes": 0}}, {"drop": None})
SPOOF6 = rule("input", match({"payload": {"protocol": "ip6", "field": "saddr"}}, "::1"), {"drop": None})
OIF_LO = rule("output", match({"meta": {"key": "oif"}}, "lo"), {"accept": None})
WEB = rule("output", match({"payload": {"protocol": "tcp", "field": "dport"}}, {"set": [80, 443]}), {"accept": None})


def ruleset(policies=None, table="filter", rules=(IIF_LO, SPOOF4, SPOOF6, OIF_LO, WEB)):
    policies = policies or {"input": "drop", "forward": "drop", "output": "drop"}
    items = [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": table, "handle": 1}}]
    items += [{"chain": {"family": "inet", "table": table, "name": hook, "handle": 1, "type": "filter", "hook": hook,
                         "prio": 0, "policy": policy}} for hook, policy in policies.items()]
    items += [{"rule": dict(r["rule"], table=table)} for r in rules]
    return json.dumps({"nftables": items})


PARAMS = {"4.3.4": {"params": {"table": "inet filter"}},
          "4.3.5": {"params": {"hooks": ["input", "forward", "output"]}},
          "4.3.6": {"params": {"input": ["iif lo accept", "ip saddr 127.0.0.0/8 drop", "ip6 saddr ::1 drop"],
                               "output": ["oif lo accept"]}},
          "4.3.8": {"params": {"input": "drop", "forward": "drop", "output": "drop"}}}


class Baseline:
    def values(self, cis_id):
        return PARAMS[cis_id]


def test_rules_are_rendered_in_nft_words():
    assert fw.render(WEB["rule"]["expr"]) == "tcp dport { 80, 443 } accept"
    assert fw.render(SPOOF4["rule"]["expr"]) == "ip saddr 127.0.0.0/8 drop"
    ct = [match({"ct": {"key": "state"}}, ["established", "related"], "in"), {"accept": None}]
    assert fw.render(ct) == "ct state established,related accept"


def test_company_table_exists():
    ok = facts(nft=ruleset())
    assert findings(fw.test_nftables_table_exists, facts=ok, control_values=PARAMS["4.3.4"]) == []
    renamed = facts(nft=ruleset(table="adhoc"))
    assert findings(fw.test_nftables_table_exists, facts=renamed, control_values=PARAMS["4.3.4"]) == [
        "table inet filter is not loaded (tables: inet adhoc)"]
    broken = facts(nft="sh: 1: nft: not found")
    assert "gave no ruleset: sh: 1: nft: not found" in findings(
        fw.test_nftables_table_exists, facts=broken, control_values=PARAMS["4.3.4"])[0]


def test_base_chains_at_every_hook():
    ok = facts(nft=ruleset())
    assert findings(fw.test_nftables_base_chains_exist, facts=ok, control_values=PARAMS["4.3.5"]) == []
    no_forward = facts(nft=ruleset({"input": "drop", "output": "drop"}))
    assert findings(fw.test_nftables_base_chains_exist, facts=no_forward, control_values=PARAMS["4.3.5"]) == [
        "no filter base chain is hooked at forward"]


def test_loopback_rules():
    assert findings(fw.test_nftables_loopback_traffic, facts=facts(nft=ruleset()), control_values=PARAMS["4.3.6"]) == []
    open_lo = facts(nft=ruleset(rules=(SPOOF4, SPOOF6, OIF_LO)))
    assert findings(fw.test_nftables_loopback_traffic, facts=open_lo, control_values=PARAMS["4.3.6"]) == [
        "no input base chain has the rule `iif lo accept`"]


def test_default_deny():
    assert findings(fw.test_nftables_default_deny, facts=facts(nft=ruleset()), control_values=PARAMS["4.3.8"]) == []
    accepting = facts(nft=ruleset({"input": "accept", "forward": "drop", "output": "drop"}))
    assert findings(fw.test_nftables_default_deny, facts=accepting, control_values=PARAMS["4.3.8"]) == [
        "inet filter input has policy accept, expected drop"]


def test_boot_ruleset_meets_the_same_values():
    ok = facts(nft_boot="file /etc/nftables.conf\n" + ruleset())
    assert findings(fw.test_nftables_rules_permanent, facts=ok, baseline=Baseline()) == []
    loose_policy = {"input": "accept", "forward": "drop", "output": "drop"}
    loose = facts(nft_boot="file /etc/nftables.conf\n" + ruleset(loose_policy))
    assert findings(fw.test_nftables_rules_permanent, facts=loose, baseline=Baseline()) == [
        "at boot (/etc/nftables.conf): inet filter input has policy accept, expected drop"]
    broken = facts(nft_boot="file /etc/nftables.conf\n/etc/nftables.conf:3:1-5: Error: syntax error")
    assert findings(fw.test_nftables_rules_permanent, facts=broken, baseline=Baseline())[0].startswith(
        "/etc/nftables.conf does not load: /etc/nftables.conf:3:1-5: Error")
    unloaded = facts(nft_boot="file none")
    assert "loads no ruleset file" in findings(fw.test_nftables_rules_permanent, facts=unloaded, baseline=Baseline())[0]


# 5.2 --------------------------------------------------------------------------------------------

SUDOERS = """### /etc/sudoers
Defaults\tenv_reset
Defaults\tsecure_path="/usr/local/sbin:/usr/sbin:/usr/bin"
Defaults\tuse_pty
root\tALL=(ALL:ALL) ALL
%sudo\tALL=(ALL:ALL) ALL
@includedir /etc/sudoers.d
### /etc/sudoers.d/60-golden-cis
# Written by hardening-cis.sh
Defaults use_pty
Defaults logfile="/var/log/sudo.log"
Defaults timestamp_timeout=15
### /etc/sudoers.d/90-cloud-init-users
# User rules for golden-test
golden-test ALL=(ALL) NOPASSWD:ALL
### /etc/sudoers.d/README
# As of Debian version 1.7.2p1-1, the default /etc/sudoers file created on
# installation of the package now includes the directive:
#\t#includedir /etc/sudoers.d"""
SUDO_V = "Sudo version 1.9.13p3\nAuthentication timestamp timeout: 15.0 minutes\nPassword prompt timeout: 0.0 minutes"


def with_dropin(text, name="99-violation"):
    return facts(sudoers=f"{SUDOERS}\n### /etc/sudoers.d/{name}\n{text}", sudo_settings=SUDO_V)


def test_sudoers_read_as_sudo_reads_them():
    skipped = with_dropin("Defaults !use_pty", name="99-violation.dpkg-old")
    assert [p for p, _ in sudo.sudoers_lines(skipped)][-1] == "/etc/sudoers.d/90-cloud-init-users"
    d = sudo.effective(facts(sudoers=SUDOERS), "logfile")
    assert (d.path, d.value) == ("/etc/sudoers.d/60-golden-cis", "/var/log/sudo.log")


def test_use_pty():
    assert findings(sudo.test_sudo_uses_pty, facts=facts(sudoers=SUDOERS)) == []
    assert findings(sudo.test_sudo_uses_pty, facts=with_dropin("Defaults !use_pty")) == [
        "use_pty is turned off in /etc/sudoers.d/99-violation for everyone"]
    assert findings(sudo.test_sudo_uses_pty, facts=with_dropin("Defaults:alice !use_pty")) == [
        "/etc/sudoers.d/99-violation: Defaults:alice !use_pty"]


def test_log_file():
    want = {"params": {"logfile": "/var/log/sudo.log"}}
    assert findings(sudo.test_sudo_log_file, facts=facts(sudoers=SUDOERS), control_values=want) == []
    assert findings(sudo.test_sudo_log_file, facts=with_dropin("Defaults !logfile"), control_values=want) == [
        "sudo logfile is off, expected /var/log/sudo.log"]


def test_password_required_except_for_the_test_user():
    ok = facts(sudoers=SUDOERS)
    assert findings(sudo.test_sudo_requires_password, facts=ok, test_user="golden-test") == []
    nopasswd = with_dropin("%sudo ALL=(ALL:ALL) NOPASSWD: ALL")
    assert findings(sudo.test_sudo_requires_password, facts=nopasswd, test_user="golden-test") == [
        "/etc/sudoers.d/99-violation: %sudo ALL=(ALL:ALL) NOPASSWD: ALL"]
    shared = with_dropin("golden-test, ops ALL=(ALL) NOPASSWD: ALL")
    assert len(findings(sudo.test_sudo_requires_password, facts=shared, test_user="golden-test")) == 1


def test_authentication_not_turned_off():
    assert findings(sudo.test_sudo_reauthentication_not_disabled, facts=facts(sudoers=SUDOERS)) == []
    off = with_dropin("Defaults env_reset, !authenticate")
    assert findings(sudo.test_sudo_reauthentication_not_disabled, facts=off) == [
        "/etc/sudoers.d/99-violation: Defaults !authenticate"]


def test_timestamp_timeout():
    want = {"params": {"timestamp_timeout": 15}}
    ok = facts(sudoers=SUDOERS, sudo_settings=SUDO_V)
    assert findings(sudo.test_sudo_timestamp_timeout, facts=ok, control_values=want) == []
    forever = facts(sudoers=SUDOERS, sudo_settings=SUDO_V.replace("15.0", "-1.0"))
    assert findings(sudo.test_sudo_timestamp_timeout, facts=forever, control_values=want) == [
        "everyone (sudo -V): timestamp_timeout is -1.0, expected 0 to 15 minutes"]
    scoped = with_dropin("Defaults:alice timestamp_timeout=60")
    assert findings(sudo.test_sudo_timestamp_timeout, facts=scoped, control_values=want) == [
        "/etc/sudoers.d/99-violation: Defaults:alice: timestamp_timeout is 60, expected 0 to 15 minutes"]


SU = ("### /etc/pam.d/su\nauth       sufficient pam_rootok.so\n"
      "auth       required   pam_wheel.so use_uid group=sugroup\n@include common-auth")
GROUP = "root:x:0:\nsudo:x:27:\nsugroup:x:996:"
PASSWD = "root:x:0:0:root:/root:/bin/bash\ngolden-test:x:1000:1000::/home/golden-test:/bin/bash"


def test_su_restricted_to_an_empty_group():
    want = {"params": {"group": "sugroup"}}
    ok = facts(pam=SU, group=GROUP, passwd=PASSWD)
    assert findings(sudo.test_su_restricted, facts=ok, control_values=want) == []
    opened = facts(pam=SU.replace("auth       required   pam_wheel", "# auth       required   pam_wheel"),
                   group=GROUP.replace("996:", "996:ops"), passwd=PASSWD)
    found = findings(sudo.test_su_restricted, facts=opened, control_values=want)
    assert found == ["/etc/pam.d/su has no `auth required pam_wheel.so use_uid group=sugroup` (found: no pam_wheel)",
                     "group sugroup has members: ops"]
