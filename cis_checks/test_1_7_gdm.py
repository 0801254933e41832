"""1.7 GNOME Display Manager: the dconf settings and locks that apply once gdm3 is installed.

dconf reads a profile (/etc/dconf/profile/gdm for the login screen, .../user for sessions), which
names system databases, highest priority first; a database is the keyfiles of
/etc/dconf/db/<db>.d (a later file wins) and the keys listed under its locks/, which users cannot
override. Without gdm3 the recommendations are not applicable and pass.
"""

from pipeline.checks import facts as fact_sections
from pipeline.checks.authoring import control, require

fact_sections.register("dconf", fact_sections.cat_files(
    "/etc/dconf/profile/* /etc/dconf/db/*.d/* /etc/dconf/db/*.d/locks/*"))
fact_sections.register("gdm_conf", fact_sections.cat_files("/etc/gdm3/daemon.conf /etc/gdm3/custom.conf"))

GREETER, SESSION = "gdm", "user"
LOGIN = "/org/gnome/login-screen"
MEDIA = "/org/gnome/desktop/media-handling"
IDLE, LOCK = "/org/gnome/desktop/session/idle-delay", "/org/gnome/desktop/screensaver/lock-delay"
NEEDS = ["packages", "dconf"]


def system_dbs(files, profile):
    text = files.get(f"/etc/dconf/profile/{profile}", "")
    return [l.split(":", 1)[1].strip() for l in text.splitlines() if l.strip().startswith("system-db:")]


def _keyfiles(files, directory):
    return [files[p] for p in sorted(files) if p.startswith(directory) and "/" not in p[len(directory):]]


def dconf_profile(files, profile):
    """(settings {/path/key: value}, locked keys) that a dconf profile's system databases impose."""
    settings, locks = {}, set()
    for db in reversed(system_dbs(files, profile)):          # lowest priority first, overridden later
        for text in _keyfiles(files, f"/etc/dconf/db/{db}.d/"):
            group = None
            for line in (l.strip() for l in text.splitlines()):
                if line.startswith("[") and line.endswith("]"):
                    group = "/" + line[1:-1].strip("/")
                elif group and "=" in line and not line.startswith("#"):
                    key, _, value = line.partition("=")
                    settings[f"{group}/{key.strip()}"] = value.strip()
        for text in _keyfiles(files, f"/etc/dconf/db/{db}.d/locks/"):
            locks |= {l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")}
    return settings, locks


def gvariant(text):
    """A GVariant value as plain text: `uint32 900` -> 900, `'text'` -> text."""
    text = (text or "").strip()
    words = text.split(None, 1)
    if len(words) == 2 and words[0] in ("uint32", "int32", "uint64", "int64"):
        text = words[1]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def gdm_findings(facts, profile, values=None, bounds=None, locked=()):
    """Findings for a dconf profile where gdm3 is installed: keys with these `values`, integer
    keys within (low, high) `bounds`, keys `locked` against users."""
    if "gdm3" not in facts.packages:
        return []
    files = facts.files("dconf")
    if not system_dbs(files, profile):
        return [f"/etc/dconf/profile/{profile} names no system database: nothing is imposed"]
    settings, locks = dconf_profile(files, profile)
    findings = []
    for key, want in (values or {}).items():
        actual = settings.get(key)
        if gvariant(actual) != want:
            findings.append(f"dconf {key} is {actual or 'unset'}, expected {want}")
    for key, (low, high) in (bounds or {}).items():
        actual = gvariant(settings.get(key))
        if not (actual.isdigit() and low <= int(actual) <= high):
            findings.append(f"dconf {key} is {settings.get(key) or 'unset'}, expected {low} to {high}")
    findings += [f"dconf {key} is not locked: users can change it" for key in locked if key not in locks]
    return findings


@control("1.7.2", violate="gdm_setting gdm org/gnome/login-screen banner-message-enable false", needs=NEEDS)
def test_gdm_banner(facts, control_values):
    """The login screen shows the company banner before anyone logs in."""
    text = control_values["params"]["banner_text"]
    require(gdm_findings(facts, GREETER, values={f"{LOGIN}/banner-message-enable": "true",
                                                 f"{LOGIN}/banner-message-text": text}))


@control("1.7.3", violate="gdm_setting gdm org/gnome/login-screen disable-user-list false", needs=NEEDS)
def test_gdm_user_list_disabled(facts):
    """The login screen does not list user names (half of every login)."""
    require(gdm_findings(facts, GREETER, values={f"{LOGIN}/disable-user-list": "true"}))


@control("1.7.4", violate="gdm_setting local org/gnome/desktop/session idle-delay 'uint32 0'", needs=NEEDS)
def test_gdm_idle_lock(facts, control_values):
    """An idle session blanks within the company's idle delay (0 would be never) and locks soon after."""
    params = control_values["params"]
    require(gdm_findings(facts, SESSION, bounds={IDLE: (1, params["idle_delay"]), LOCK: (0, params["lock_delay"])}))


@control("1.7.5", violate="gdm_unlock local /org/gnome/desktop/session/idle-delay", needs=NEEDS)
def test_gdm_idle_lock_locked(facts):
    """Users cannot lengthen the idle delays."""
    require(gdm_findings(facts, SESSION, locked=(IDLE, LOCK)))


@control("1.7.6", violate="gdm_setting local org/gnome/desktop/media-handling automount true", needs=NEEDS)
def test_gdm_no_automount(facts):
    """Removable media are not mounted, or opened, when plugged in."""
    require(gdm_findings(facts, SESSION, values={f"{MEDIA}/automount": "false", f"{MEDIA}/automount-open": "false"}))


@control("1.7.7", violate="gdm_unlock local /org/gnome/desktop/media-handling/automount", needs=NEEDS)
def test_gdm_no_automount_locked(facts):
    """Users cannot turn automounting back on."""
    require(gdm_findings(facts, SESSION, locked=(f"{MEDIA}/automount", f"{MEDIA}/automount-open")))


@control("1.7.8", violate="gdm_setting local org/gnome/desktop/media-handling autorun-never false", needs=NEEDS)
def test_gdm_autorun_never(facts):
    """Software on removable media never runs by itself."""
    require(gdm_findings(facts, SESSION, values={f"{MEDIA}/autorun-never": "true"}))


@control("1.7.9", violate="gdm_unlock local /org/gnome/desktop/media-handling/autorun-never", needs=NEEDS)
def test_gdm_autorun_never_locked(facts):
    """Users cannot turn autorun back on."""
    require(gdm_findings(facts, SESSION, locked=(f"{MEDIA}/autorun-never",)))


def xdmcp_findings(files):
    findings = []
    for path, text in files.items():
        section = None
        for line in (l.split("#", 1)[0].strip() for l in text.splitlines()):
            if line.startswith("["):
                section = line.strip("[]").lower()
            elif section == "xdmcp" and line.replace(" ", "").lower() == "enable=true":
                findings.append(f"{path} enables XDMCP (unencrypted remote logins)")
    return findings


@control("1.7.10", violate="fake_package gdm3 && mkdir -p /etc/gdm3 && printf '[xdmcp]\\nEnable=true\\n' > /etc/gdm3/custom.conf",
         needs=["gdm_conf"])
def test_xdmcp_disabled(facts):
    """No GDM configuration enables XDMCP, which sends whole login sessions unencrypted."""
    require(xdmcp_findings(facts.files("gdm_conf")))
