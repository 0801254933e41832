"""The SSH policy, live: what a client is refused, tried from the test runner against the candidate's
sshd (the suite's own account, golden-test, logs in with its key and is otherwise left out)."""

import socket

import paramiko
import pytest

from pipeline.checks.authoring import violates

RESTART = " && systemctl restart ssh.service"


def _transport(endpoint, **preferred):
    sock = socket.create_connection((endpoint["hostname"], endpoint["port"]), timeout=15)
    t = paramiko.Transport(sock)
    for attr, values in preferred.items():
        setattr(t, attr, tuple(values))
    return t


def _allowed_methods(endpoint, user):
    t = _transport(endpoint)
    try:
        t.start_client(timeout=20)
        try:
            t.auth_none(user)
        except paramiko.BadAuthenticationType as exc:
            return set(exc.allowed_types)
        return {"none"}
    finally:
        t.close()


@violates("sshd_option PasswordAuthentication yes" + RESTART)
def test_password_authentication_is_refused(ssh_endpoint):
    methods = _allowed_methods(ssh_endpoint, ssh_endpoint["user"])
    assert not methods & {"password", "keyboard-interactive", "none"}, f"sshd offers {sorted(methods)}"


# Root must also pass sshd's access lists (5.1.4's AllowGroups) to be let in: the scenario adds it.
@violates("sshd_option PermitRootLogin prohibit-password && "
          "for g in $(sshd -T | awk '$1 == \"allowgroups\" {$1 = \"\"; print}'); do usermod -aG \"$g\" root; done"
          + RESTART)
def test_root_login_is_refused_even_with_an_authorized_key(host, ssh_endpoint):
    # The overlay is thrown away after the boot; the key is removed again anyway.
    host.run("install -d -m 700 /root/.ssh && cp /home/golden-test/.ssh/authorized_keys /root/.ssh/golden-probe-keys "
             "&& cat /root/.ssh/golden-probe-keys >> /root/.ssh/authorized_keys")
    try:
        key = paramiko.Ed25519Key.from_private_key_file(ssh_endpoint["identityfile"])
        t = _transport(ssh_endpoint)
        try:
            t.start_client(timeout=20)
            try:
                t.auth_publickey("root", key)
                accepted = t.is_authenticated()
            except paramiko.AuthenticationException:
                accepted = False
        finally:
            t.close()
    finally:
        host.run("sed -i '/golden-test/d' /root/.ssh/authorized_keys; rm -f /root/.ssh/golden-probe-keys")
    assert not accepted, "root logged in over SSH with an authorized key"


WEAK = {"cipher": ["aes128-cbc", "3des-cbc"], "mac": ["hmac-sha1", "hmac-md5"],
        "kex": ["diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1"]}
ALLOWED = {"cipher": ("5.1.6", "ciphers"), "mac": ("5.1.15", "macs"), "kex": ("5.1.12", "kexalgorithms")}


def _outside_the_baseline(baseline, kind):
    """Weak algorithms of this kind that the baseline's allowed list does not contain."""
    cis_id, key = ALLOWED[kind]
    spec = baseline.values(cis_id)["sshd"][key]
    allowed = set(spec["subset_of"]) if isinstance(spec, dict) else set(str(spec).split(","))
    return [name for name in WEAK[kind] if name not in allowed]


@pytest.mark.parametrize("kind", ["cipher", "mac", "kex"])
@violates("sshd_option Ciphers aes128-cbc,aes128-ctr && sshd_option MACs hmac-sha1,hmac-sha2-256 "
          "&& sshd_option KexAlgorithms diffie-hellman-group14-sha1,curve25519-sha256,curve25519-sha256@libssh.org"
          + RESTART)   # paramiko, which the suite connects with, knows curve25519 by its libssh.org name
def test_a_client_offering_only_weak_algorithms_is_refused(ssh_endpoint, baseline, kind):
    weak = _outside_the_baseline(baseline, kind)
    assert weak, f"every weak {kind} this test knows is allowed by the baseline"
    attr = {"cipher": "_preferred_ciphers", "mac": "_preferred_macs", "kex": "_preferred_kex"}[kind]
    accepted = []
    for name in weak:
        t = _transport(ssh_endpoint, **{attr: [name]})
        try:
            t.start_client(timeout=20)
            accepted.append(name)
        except KeyError:
            # paramiko negotiated a key exchange it has no implementation for (the SHA-1 groups):
            # the server agreed to it, which is what this test refuses.
            accepted.append(name)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            t.close()
    assert not accepted, f"sshd accepted a client offering only weak {kind}: {accepted}"
