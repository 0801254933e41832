"""The allowlist tests of acceptance/test_unnecessary.py have a positive control: an `ss` or `dpkg-query`
that printed nothing (or lost sshd) fails them, as an empty `systemctl` listing already fails the services
test. Run on host outputs shaped as a Debian 12 candidate prints them, through a stand-in for testinfra's host."""

from types import SimpleNamespace

import pytest

import acceptance.test_unnecessary as unnecessary

SS = """\
udp   UNCONN 0      0          127.0.0.1:323        0.0.0.0:*    users:(("chronyd",pid=512,fd=5))
udp   UNCONN 0      0              [::1]:323           [::]:*    users:(("chronyd",pid=512,fd=6))
udp   UNCONN 0      0      0.0.0.0%ens3:68          0.0.0.0:*    users:(("dhclient",pid=480,fd=7))
tcp   LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=601,fd=3))
tcp   LISTEN 0      4096               *:9100             *:*    users:(("prometheus-node",pid=530,fd=3))
tcp   LISTEN 0      128             [::]:22            [::]:*    users:(("sshd",pid=601,fd=4))
"""
DPKG = "adduser installed\nopenssh-server installed\nopenssh-client installed\nrc-package config-files\n"
SPEC = SimpleNamespace(path="images/golden-linux.yaml", allowed={
    "listening": ["tcp/22", "tcp/9100", "udp/68", "udp/323@127.0.0.1", "udp/323@::1"],
    "packages": ["adduser", "openssh-*"], "services": ["ssh.service"]})


class Host:
    def __init__(self, outputs):
        self.outputs = outputs

    def check_output(self, command):
        return next(out for prefix, out in self.outputs.items() if command.startswith(prefix))


def test_the_candidates_listeners_and_packages_pass():
    unnecessary.test_listeners_within_the_allowlist(Host({"ss ": SS}), SPEC)
    unnecessary.test_no_package_outside_the_allowlist(Host({"dpkg-query": DPKG}), SPEC)


@pytest.mark.parametrize("output", ["", "\n", SS.replace(":22 ", ":2222 ")], ids=["empty", "blank", "sshd-elsewhere"])
def test_a_listener_list_without_sshd_fails(output):
    with pytest.raises(AssertionError, match="ss listed no tcp/22 listener"):
        unnecessary.test_listeners_within_the_allowlist(Host({"ss ": output}), SPEC)


@pytest.mark.parametrize("output", ["", "\n", DPKG.replace("openssh-server installed", "openssh-server config-files")],
                         ids=["empty", "blank", "removed"])
def test_a_package_list_without_openssh_server_fails(output):
    with pytest.raises(AssertionError, match="dpkg-query listed no installed openssh-server"):
        unnecessary.test_no_package_outside_the_allowlist(Host({"dpkg-query": output}), SPEC)


def test_the_allowlists_still_refuse_what_is_outside_them():
    extra = SS + 'tcp   LISTEN 0      5            0.0.0.0:8088       0.0.0.0:*    users:(("python3",pid=9,fd=3))\n'
    with pytest.raises(AssertionError, match="listening outside the allowlist: .*tcp/8088"):
        unnecessary.test_listeners_within_the_allowlist(Host({"ss ": extra}), SPEC)
    with pytest.raises(AssertionError, match="1 packages outside the allowlist: .*golden-unexpected-tool"):
        unnecessary.test_no_package_outside_the_allowlist(
            Host({"dpkg-query": DPKG + "golden-unexpected-tool installed\n"}), SPEC)
