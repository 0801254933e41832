"""The SSH policy, live: what a client is refused, tried from the test runner against the candidate's
sshd (the suite's own account, golden-test, logs in with its key and is otherwise left out).

Each refusal is believed only after a positive control on the same path (the suite's key, with the
allowed algorithms, gets in just before) and only when it is the refusal itself: a negotiation
failure naming the algorithm kind, or an authentication failure from an sshd that answered.
"""

import contextlib
import secrets
import socket

import paramiko
import pytest

from pipeline.checks.authoring import violates

RESTART = " && systemctl restart ssh.service"
PREFERENCE = {"cipher": "_preferred_ciphers", "mac": "_preferred_macs", "kex": "_preferred_kex"}
# paramiko's IncompatiblePeer messages when the server offers none of the client's algorithms of a kind
NEGOTIATION_FAILED = {"cipher": "no acceptable ciphers", "mac": "no acceptable macs", "kex": "no acceptable kex algorithm"}


@contextlib.contextmanager
def session(endpoint, **preferred):
    """A transport to the candidate's sshd past the key exchange, the client offering only `preferred`.

        with session(ssh_endpoint, _preferred_ciphers=["aes256-ctr"]) as t: t.auth_publickey(user, key)
    """
    sock = socket.create_connection((endpoint["hostname"], endpoint["port"]), timeout=15)
    t = paramiko.Transport(sock)
    try:
        for attr, values in preferred.items():
            setattr(t, attr, tuple(values))
        t.start_client(timeout=20)
        yield t
    finally:
        t.close()


def gets_in(endpoint, user=None, **preferred):
    """Positive control: the suite's key logs in on this path, so a refusal that follows is sshd's policy.

        gets_in(ssh_endpoint)                                   # AssertionError if it cannot
    """
    key = paramiko.PKey.from_path(endpoint["identityfile"])
    user = user or endpoint["user"]
    try:
        with session(endpoint, **preferred) as t:
            t.auth_publickey(user, key)
            authenticated = t.is_authenticated()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise AssertionError(f"control: {user} with the suite's key and {preferred or 'the default algorithms'} "
                             f"could not get in, so no refusal can be told: {exc!r}") from exc
    assert authenticated, f"control: {user} with the suite's key was not authenticated"


def negotiation_refused(endpoint, kind, name):
    """Whether sshd refused a client offering only the algorithm `name` of `kind` (cipher, mac, kex);
    any other failure (no sshd, a dropped connection) is an AssertionError, never a refusal."""
    try:
        with session(endpoint, **{PREFERENCE[kind]: [name]}):
            return False
    except KeyError:
        # paramiko agreed on a key exchange it has no implementation for (the SHA-1 groups):
        # the server offered it, which is what this test refuses.
        return False
    except paramiko.IncompatiblePeer as exc:
        if NEGOTIATION_FAILED[kind] in str(exc):
            return True
        raise AssertionError(f"{name}: the key exchange failed on something else than the {kind}: {exc}") from exc
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise AssertionError(f"{name}: the connection failed without a {kind} negotiation failure: {exc!r}") from exc


def password_methods(endpoint, user):
    """The methods sshd offers `user` once it refused a password (BadAuthenticationType's allowed
    types); {"password"} when it took one or let a wrong one be tried."""
    gets_in(endpoint)
    with session(endpoint) as t:
        try:
            t.auth_password(user, secrets.token_urlsafe(16))
        except paramiko.BadAuthenticationType as exc:
            return set(exc.allowed_types)
        except paramiko.AuthenticationException:
            pass    # a wrong password was checked, so passwords are accepted
        return {"password"}


@violates("sshd_option PasswordAuthentication yes" + RESTART)
def test_password_authentication_is_refused(ssh_endpoint):
    offered = password_methods(ssh_endpoint, ssh_endpoint["user"])
    assert "publickey" in offered and not offered & {"password", "keyboard-interactive"}, \
        f"sshd lets a client try a password: it offers {sorted(offered)}"


def root_login_refused(endpoint):
    """Whether sshd, answering, refused root the suite's key (which root's authorized_keys holds)."""
    gets_in(endpoint)
    with session(endpoint) as t:
        try:
            t.auth_publickey("root", paramiko.PKey.from_path(endpoint["identityfile"]))
        except paramiko.AuthenticationException:
            assert t.is_active(), "sshd hung up on root instead of refusing it"
            return True
        return not t.is_authenticated()


# Root must also pass sshd's access lists (5.1.4's AllowGroups) to be let in: the scenario adds it.
@violates("sshd_option PermitRootLogin prohibit-password && "
          "for g in $(sshd -T | awk '$1 == \"allowgroups\" {$1 = \"\"; print}'); do usermod -aG \"$g\" root; done"
          + RESTART)
def test_root_login_is_refused_even_with_an_authorized_key(host, ssh_endpoint):
    # The overlay is thrown away after the boot; the key is removed again anyway.
    added = host.run("install -d -m 700 /root/.ssh && cp /home/golden-test/.ssh/authorized_keys "
                     "/root/.ssh/golden-probe-keys && cat /root/.ssh/golden-probe-keys >> /root/.ssh/authorized_keys")
    try:
        assert added.rc == 0, f"could not give root the suite's key: {added.stderr}"
        refused = root_login_refused(ssh_endpoint)
    finally:
        host.run("sed -i '/golden-test/d' /root/.ssh/authorized_keys; rm -f /root/.ssh/golden-probe-keys")
    assert refused, "root logged in over SSH with an authorized key"


WEAK = {"cipher": ["aes128-cbc", "3des-cbc"], "mac": ["hmac-sha1", "hmac-md5"],
        "kex": ["diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1"]}
ALLOWED = {"cipher": ("5.1.6", "ciphers"), "mac": ("5.1.15", "macs"), "kex": ("5.1.12", "kexalgorithms")}


def allowed_algorithms(baseline, kind):
    """The baseline's allowed algorithms of `kind`: allowed_algorithms(baseline, "mac") -> {"hmac-sha2-256", ...}"""
    cis_id, key = ALLOWED[kind]
    spec = baseline.values(cis_id)["sshd"][key]
    return set(spec["subset_of"]) if isinstance(spec, dict) else set(str(spec).split(","))


def weak_algorithms_accepted(endpoint, baseline, kind):
    """The weak algorithms of `kind` outside the baseline that sshd agreed to (empty: all refused),
    after a client offering the baseline's allowed ones (those paramiko implements) got in."""
    allowed = allowed_algorithms(baseline, kind)
    weak = [name for name in WEAK[kind] if name not in allowed]
    assert weak, f"every weak {kind} this test knows is allowed by the baseline"
    strong = [name for name in getattr(paramiko.Transport, PREFERENCE[kind]) if name in allowed]
    assert strong, f"paramiko implements none of the baseline's allowed {kind}s: {sorted(allowed)}"
    gets_in(endpoint, **{PREFERENCE[kind]: strong})
    return [name for name in weak if not negotiation_refused(endpoint, kind, name)]


@pytest.mark.parametrize("kind", ["cipher", "mac", "kex"])
@violates("sshd_option Ciphers aes128-cbc,aes128-ctr && sshd_option MACs hmac-sha1,hmac-sha2-256 "
          "&& sshd_option KexAlgorithms diffie-hellman-group14-sha1,curve25519-sha256,curve25519-sha256@libssh.org"
          + RESTART)   # paramiko, which the suite connects with, knows curve25519 by its libssh.org name
def test_a_client_offering_only_weak_algorithms_is_refused(ssh_endpoint, baseline, kind):
    accepted = weak_algorithms_accepted(ssh_endpoint, baseline, kind)
    assert not accepted, f"sshd accepted a client offering only weak {kind}: {accepted}"
