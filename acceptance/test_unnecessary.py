"""Nothing unnecessary: listeners, packages and enabled services within the spec's allowlists
(spec field `allowed`; a drift from them is reviewed, never silently accepted)."""

import fnmatch

from pipeline.checks.facts import SYSTEMCTL
from pipeline.checks.authoring import violates


def _allowlist(spec, kind):
    assert spec.allowed.get(kind) is not None, f"the image spec {spec.path} has no allowed.{kind} allowlist"
    return spec.allowed[kind]


def _listeners(host):
    """(proto, address, port, process) of every listening TCP and UDP socket."""
    out = []
    for line in host.check_output("ss -Htulnp").splitlines():
        words = line.split()
        if len(words) < 5:
            continue
        address, _, port = words[4].rpartition(":")
        proc = next((w for w in words[5:] if w.startswith("users:")), "")
        out.append((words[0], address.strip("[]"), port, proc))
    return out


def _allowed_listener(proto, address, port, allowlist):
    for entry in allowlist:
        spec, _, where = entry.partition("@")
        if spec == f"{proto}/{port}" and (not where or where == address or where.split("%")[0] == address.split("%")[0]):
            return True
    return False


@violates("setsid python3 -m http.server 8088 --bind 0.0.0.0 </dev/null >/dev/null 2>&1 & sleep 3")
def test_listeners_within_the_allowlist(host, image_spec):
    listeners = _listeners(host)
    # An ss that printed nothing cannot pass: sshd, which the suite came in through, listens on tcp/22.
    assert any(p == "tcp" and port == "22" for p, _, port, _ in listeners), \
        f"ss listed no tcp/22 listener (sshd's): {listeners}"
    extra = [f"{p}/{port}@{a} {proc}" for p, a, port, proc in listeners
             if not _allowed_listener(p, a, port, _allowlist(image_spec, "listening"))]
    assert not extra, f"listening outside the allowlist: {extra}"


@violates("fake_package golden-unexpected-tool")
def test_no_package_outside_the_allowlist(host, image_spec):
    installed = host.check_output("dpkg-query -W -f '${Package} ${db:Status-Status}\\n'").split("\n")
    names = [l.split()[0] for l in installed if l.endswith(" installed")]
    # An empty list cannot pass: the sshd the suite came in through is openssh-server's.
    assert "openssh-server" in names, f"dpkg-query listed no installed openssh-server: {installed[:20]}"
    extra = [n for n in names if not any(fnmatch.fnmatchcase(n, g) for g in _allowlist(image_spec, "packages"))]
    assert not extra, f"{len(extra)} packages outside the allowlist: {extra[:20]}"


@violates("fake_package golden-unexpected-daemon golden-unexpected-daemon.service")
def test_no_enabled_service_outside_the_allowlist(host, image_spec):
    # Listing every unit file is slow under emulation (it once outlasted the default D-Bus timeout and
    # printed nothing). A systemctl that fails fails the test, and an empty list cannot pass: sshd,
    # which the suite came in through, must be among the enabled units.
    units = host.check_output(f"{SYSTEMCTL} list-unit-files --state=enabled --no-legend --plain").splitlines()
    names = [u.split()[0] for u in units if u.strip()]
    assert "ssh.service" in names, f"systemctl listed no ssh.service among the enabled units: {names}"
    extra = [n for n in names if not any(fnmatch.fnmatchcase(n, g) for g in _allowlist(image_spec, "services"))]
    assert not extra, f"enabled outside the allowlist: {extra}"
