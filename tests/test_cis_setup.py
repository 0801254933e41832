"""The Python controls of CIS sections 1, 2.4 and 3.1 against facts in the collector's own format:
each shown compliant and violating."""

import pytest

from .checkhelpers import check_module as load
from .checkhelpers import facts, findings

apparmor = load("test_1_3_apparmor.py")
bootloader = load("test_1_4_bootloader.py")
process = load("test_1_5_process_hardening.py")
banners = load("test_1_6_banners.py")
gdm = load("test_1_7_gdm.py")
cron = load("test_2_4_cron.py")
network = load("test_3_1_network_devices.py")


def files(**paths):
    return "\n".join(f"### {path}\n{text}" for path, text in paths.items())


# 1.3.1.3 / 1.3.1.4 AppArmor -------------------------------------------------------------------

AA_HEAD = "apparmor module is loaded.\n2 profiles are loaded.\n"
AA_ENFORCING = AA_HEAD + """2 profiles are in enforce mode.
   /usr/sbin/chronyd
   lsb_release
0 profiles are in complain mode.
0 profiles are in kill mode.
0 profiles are in unconfined mode.
1 processes have profiles defined.
1 processes are in enforce mode.
   /usr/sbin/chronyd (482) 
0 processes are in complain mode.
0 processes are unconfined but have a profile defined.
0 processes are in mixed mode.
0 processes are in kill mode."""
AA_COMPLAIN = AA_ENFORCING.replace("2 profiles are in enforce mode.\n   /usr/sbin/chronyd\n   lsb_release\n"
                                   "0 profiles are in complain mode.",
                                   "1 profiles are in enforce mode.\n   /usr/sbin/chronyd\n"
                                   "1 profiles are in complain mode.\n   lsb_release")
AA_UNCONFINED = AA_ENFORCING.replace("0 processes are unconfined but have a profile defined.",
                                     "1 processes are unconfined but have a profile defined.\n"
                                     "   /usr/local/sbin/daemon (659) ")
APPARMOR_SERVICE = {"services_enabled": ["apparmor.service"]}
UNITS = dict(unit_files="apparmor.service enabled enabled", units="apparmor.service loaded active exited")


def test_apparmor_report_parsed():
    profiles, processes = apparmor.apparmor_modes(AA_UNCONFINED)
    assert profiles == {"/usr/sbin/chronyd": "enforce", "lsb_release": "enforce"}
    assert processes == {"/usr/sbin/chronyd (482)": "enforce", "/usr/local/sbin/daemon (659)": "unconfined"}


def test_apparmor_enforce_or_complain():
    level1 = apparmor.test_apparmor_profiles_enforce_or_complain
    assert findings(level1, facts(apparmor_status=AA_ENFORCING, **UNITS), APPARMOR_SERVICE) == []
    assert findings(level1, facts(apparmor_status=AA_COMPLAIN, **UNITS), APPARMOR_SERVICE) == []
    assert findings(level1, facts(apparmor_status=AA_UNCONFINED, **UNITS), APPARMOR_SERVICE) == [
        "process /usr/local/sbin/daemon (659) is unconfined"]
    off = findings(level1, facts(apparmor_status="apparmor module is not loaded.",
                                 unit_files="apparmor.service masked enabled",
                                 units="apparmor.service masked inactive dead"), APPARMOR_SERVICE)
    assert any("AppArmor is not active" in x for x in off) and any("apparmor.service is masked" in x for x in off)


def test_apparmor_all_enforcing():
    level2 = apparmor.test_apparmor_profiles_enforcing
    assert findings(level2, facts(apparmor_status=AA_ENFORCING)) == []
    assert findings(level2, facts(apparmor_status=AA_COMPLAIN)) == ["profile lsb_release is in complain mode"]
    assert findings(level2, facts(apparmor_status=AA_HEAD.replace("2 profiles", "0 profiles"))) == [
        "no AppArmor profile is loaded"]


# 1.4.1 Bootloader password ---------------------------------------------------------------------

GRUB_CFG = """### BEGIN /etc/grub.d/01_golden-password ###
set superusers="bootadmin"
password_pbkdf2 bootadmin grub.pbkdf2.sha512.10000.1783F3.A80174
### END /etc/grub.d/01_golden-password ###
menuentry 'Debian GNU/Linux' --class os --unrestricted $menuentry_id_option 'gnulinux-simple' {
	linux	/boot/vmlinuz root=UUID=4a90 ro apparmor=1 security=apparmor
}"""


def test_bootloader_password():
    check = bootloader.test_bootloader_password
    assert findings(check, facts(grub_cfg=GRUB_CFG)) == []
    removed = "\n".join(l for l in GRUB_CFG.splitlines() if not l.startswith(("set superusers", "password_pbkdf2")))
    assert findings(check, facts(grub_cfg=removed)) == [
        "grub.cfg sets no superusers: anyone at the console can edit boot entries"]
    clear = GRUB_CFG.replace("password_pbkdf2 bootadmin grub.pbkdf2.sha512.10000.1783F3.A80174", "password bootadmin secret")
    assert findings(check, facts(grub_cfg=clear)) == ["GRUB user bootadmin has a clear-text password",
                                                      "GRUB superuser bootadmin has no PBKDF2 password (password_pbkdf2)"]


# 1.5.3 Core dumps ------------------------------------------------------------------------------

CORE_VALUES = {"sysctl": {"fs.suid_dumpable": 0}, "config": {"coredump": {"Storage": "none", "ProcessSizeMax": 0}},
               "params": {"hard_core_limit": 0}}
CORE_FACTS = {"sysctl": "fs.suid_dumpable = 0", "sysctl_files": "# /etc/sysctl.d/60-golden-cis.conf\nfs.suid_dumpable = 0",
              "config:coredump": "# /etc/systemd/coredump.conf.d/60-golden-cis.conf\n[Coredump]\nStorage=none\nProcessSizeMax=0"}
LIMITS = {"/etc/security/limits.conf": "#*               soft    core            0",
          "/etc/security/limits.d/60-golden-cis.conf": "# Written by hardening-cis.sh\n* hard core 0"}


def test_core_dumps_restricted():
    check = process.test_core_dumps_restricted
    assert findings(check, facts(limits=files(**LIMITS), **CORE_FACTS), CORE_VALUES) == []
    later = dict(LIMITS, **{"/etc/security/limits.d/99-violation.conf": "* hard core unlimited"})
    assert findings(check, facts(limits=files(**later), **CORE_FACTS), CORE_VALUES) == [
        "/etc/security/limits.d/99-violation.conf: '* hard core unlimited', expected 0"]
    exempt = dict(LIMITS, **{"/etc/security/limits.d/50-dev.conf": "@developers - core unlimited"})
    assert findings(check, facts(limits=files(**exempt), **CORE_FACTS), CORE_VALUES) == [
        "/etc/security/limits.d/50-dev.conf: @developers may dump core (hard core unlimited)"]
    suid = dict(CORE_FACTS, sysctl="fs.suid_dumpable = 2")
    assert findings(check, facts(limits=files(**{"/etc/security/limits.conf": ""}), **suid), CORE_VALUES) == [
        "sysctl fs.suid_dumpable is 2 at run time, expected 0",
        "no '* hard core' limit in /etc/security/limits.conf or limits.d"]


# 1.6.1 Message of the day ----------------------------------------------------------------------

BANNER = "Authorized use only.\nAll activity on this system is monitored and recorded."
MOTD_VALUES = {"banners": {"/etc/motd": BANNER}}


def test_motd():
    check = banners.test_motd
    assert findings(check, facts(content=files(**{"/etc/motd": BANNER}), motd_dynamic=""), MOTD_VALUES) == []
    uname = "Linux golden 6.1.0-56-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.140-1 x86_64"
    (finding,) = findings(check, facts(content=files(**{"/etc/motd": BANNER}), motd_dynamic=uname), MOTD_VALUES)
    assert finding.startswith("/etc/update-motd.d prints 'Linux' at login")
    debian = facts(content=files(**{"/etc/motd": "Welcome to Debian GNU/Linux 12 (bookworm)"}), motd_dynamic="")
    assert len(findings(check, debian, MOTD_VALUES)) == 2      # not the banner, and names the OS


# 1.7 GDM ---------------------------------------------------------------------------------------

DCONF = {
    "/etc/dconf/profile/gdm": "user-db:user\nsystem-db:gdm\nfile-db:/usr/share/gdm/greeter-dconf-defaults",
    "/etc/dconf/profile/user": "user-db:user\nsystem-db:local",
    "/etc/dconf/db/gdm.d/60-golden-cis-banner": "# Written by hardening-cis.sh\n[org/gnome/login-screen]\n"
                                                "banner-message-enable=true\nbanner-message-text='Authorized use only.'",
    "/etc/dconf/db/gdm.d/60-golden-cis-user-list": "[org/gnome/login-screen]\ndisable-user-list=true",
    "/etc/dconf/db/local.d/60-golden-cis-screensaver": "[org/gnome/desktop/session]\nidle-delay=uint32 900\n"
                                                       "[org/gnome/desktop/screensaver]\nlock-delay=uint32 5",
    "/etc/dconf/db/local.d/locks/60-golden-cis-screensaver": "# Written by hardening-cis.sh\n"
                                                             "/org/gnome/desktop/session/idle-delay\n"
                                                             "/org/gnome/desktop/screensaver/lock-delay",
    "/etc/dconf/db/local.d/60-golden-cis-automount": "[org/gnome/desktop/media-handling]\nautomount=false\n"
                                                     "automount-open=false",
    "/etc/dconf/db/local.d/locks/60-golden-cis-automount": "/org/gnome/desktop/media-handling/automount\n"
                                                           "/org/gnome/desktop/media-handling/automount-open",
    "/etc/dconf/db/local.d/60-golden-cis-autorun": "[org/gnome/desktop/media-handling]\nautorun-never=true",
    "/etc/dconf/db/local.d/locks/60-golden-cis-autorun": "/org/gnome/desktop/media-handling/autorun-never",
}
GDM_VALUES = {"1.7.2": {"params": {"banner_text": "Authorized use only."}},
              "1.7.4": {"params": {"idle_delay": 900, "lock_delay": 5}}}
WITH_GDM = "gdm3\tinstalled\t43.0-3\ncron\tinstalled\t3.0"
GDM_CONTROLS = {"1.7.2": gdm.test_gdm_banner, "1.7.3": gdm.test_gdm_user_list_disabled, "1.7.4": gdm.test_gdm_idle_lock,
                "1.7.5": gdm.test_gdm_idle_lock_locked, "1.7.6": gdm.test_gdm_no_automount,
                "1.7.7": gdm.test_gdm_no_automount_locked, "1.7.8": gdm.test_gdm_autorun_never,
                "1.7.9": gdm.test_gdm_autorun_never_locked}
# Each scenario: a keyfile that sorts after the hardening's own, or a lock removed.
GDM_VIOLATIONS = {
    "1.7.2": ("/etc/dconf/db/gdm.d/99-violation", "[org/gnome/login-screen]\nbanner-message-enable=false",
              "dconf /org/gnome/login-screen/banner-message-enable is false, expected true"),
    "1.7.3": ("/etc/dconf/db/gdm.d/99-violation", "[org/gnome/login-screen]\ndisable-user-list=false",
              "dconf /org/gnome/login-screen/disable-user-list is false, expected true"),
    "1.7.4": ("/etc/dconf/db/local.d/99-violation", "[org/gnome/desktop/session]\nidle-delay=uint32 0",
              "dconf /org/gnome/desktop/session/idle-delay is uint32 0, expected 1 to 900"),
    "1.7.5": ("/etc/dconf/db/local.d/locks/60-golden-cis-screensaver", "/org/gnome/desktop/screensaver/lock-delay",
              "dconf /org/gnome/desktop/session/idle-delay is not locked: users can change it"),
    "1.7.6": ("/etc/dconf/db/local.d/99-violation", "[org/gnome/desktop/media-handling]\nautomount=true",
              "dconf /org/gnome/desktop/media-handling/automount is true, expected false"),
    "1.7.7": ("/etc/dconf/db/local.d/locks/60-golden-cis-automount", "/org/gnome/desktop/media-handling/automount-open",
              "dconf /org/gnome/desktop/media-handling/automount is not locked: users can change it"),
    "1.7.8": ("/etc/dconf/db/local.d/99-violation", "[org/gnome/desktop/media-handling]\nautorun-never=false",
              "dconf /org/gnome/desktop/media-handling/autorun-never is false, expected true"),
    "1.7.9": ("/etc/dconf/db/local.d/locks/60-golden-cis-autorun", "",
              "dconf /org/gnome/desktop/media-handling/autorun-never is not locked: users can change it"),
}


@pytest.mark.parametrize("cis_id", sorted(GDM_CONTROLS))
def test_gdm_settings(cis_id):
    check, values = GDM_CONTROLS[cis_id], GDM_VALUES.get(cis_id, {})
    assert findings(check, facts(packages=WITH_GDM, dconf=files(**DCONF)), control_values=values) == []
    path, text, expected = GDM_VIOLATIONS[cis_id]
    broken = facts(packages=WITH_GDM, dconf=files(**dict(DCONF, **{path: text})))
    assert findings(check, broken, control_values=values) == [expected]
    # Without gdm3 the recommendation is not applicable: even missing settings pass.
    assert findings(check, facts(packages="cron\tinstalled\t3.0", dconf=""), control_values=values) == []


def test_gdm_profile_without_system_db():
    no_profile = facts(packages=WITH_GDM, dconf=files(**{k: v for k, v in DCONF.items() if "profile/user" not in k}))
    assert findings(gdm.test_gdm_autorun_never, no_profile) == [
        "/etc/dconf/profile/user names no system database: nothing is imposed"]


def test_xdmcp():
    check = gdm.test_xdmcp_disabled
    assert findings(check, facts(gdm_conf="")) == []
    daemon = "[daemon]\n[security]\n[xdmcp]\n#Enable=true\n[chooser]"
    assert findings(check, facts(gdm_conf=files(**{"/etc/gdm3/daemon.conf": daemon}))) == []
    enabled = files(**{"/etc/gdm3/daemon.conf": daemon, "/etc/gdm3/custom.conf": "[xdmcp]\nEnable = true"})
    assert findings(check, facts(gdm_conf=enabled)) == ["/etc/gdm3/custom.conf enables XDMCP (unencrypted remote logins)"]


# 2.4.2.1 at ------------------------------------------------------------------------------------

AT_VALUES = {"files": {"/etc/at.allow": {"mode": "0640", "owner": "root", "group": ["root", "daemon"]},
                       "/etc/at.deny": {"mode": "0640", "owner": "root", "group": ["root", "daemon"], "absent_ok": True}}}
WITH_AT = "at\tinstalled\t3.2.5-1\ncron\tinstalled\t3.0"


def test_at_restricted():
    check = cron.test_at_restricted
    allowed = "/etc/at.allow|/etc/at.allow|640|root|daemon|regular file\n/etc/at.deny|absent"
    assert findings(check, facts(packages=WITH_AT, stat=allowed), AT_VALUES) == []
    missing = "/etc/at.allow|absent\n/etc/at.deny|/etc/at.deny|640|root|daemon|regular file"
    assert findings(check, facts(packages=WITH_AT, stat=missing), AT_VALUES) == ["/etc/at.allow does not exist"]
    # Without at there is nothing to restrict.
    assert findings(check, facts(packages="cron\tinstalled\t3.0", stat=missing), AT_VALUES) == []


# 3.1.2 Wireless --------------------------------------------------------------------------------

WIRELESS_VALUES = {"kernel_modules": ["cfg80211"]}
NO_CFG80211 = dict(modules="cfg80211||modprobe: FATAL: Module cfg80211 not found in directory /lib/modules/6.1.0",
                   lsmod="ext4 1 0 - Live 0x0", modprobe_config="")


def test_wireless_disabled():
    check = network.test_wireless_disabled
    assert findings(check, facts(wireless="", **NO_CFG80211), WIRELESS_VALUES) == []
    assert findings(check, facts(wireless="wlan0 iwlwifi", **NO_CFG80211), WIRELESS_VALUES) == [
        "wireless interface wlan0 exists (driver iwlwifi)"]
    loadable = dict(NO_CFG80211, modules="cfg80211|/lib/modules/6.1.0/kernel/cfg80211.ko|insmod /lib/modules/6.1.0/kernel/cfg80211.ko ")
    assert findings(check, facts(wireless="", **loadable), WIRELESS_VALUES) == [
        "module cfg80211 is loadable (modprobe would run: insmod /lib/modules/6.1.0/kernel/cfg80211.ko)",
        "module cfg80211 is not blacklisted"]
