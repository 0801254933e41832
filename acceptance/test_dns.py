"""The image's resolver resolves the hosts the image itself depends on: its apt sources and time servers."""

import ipaddress
import re

from pipeline.checks.authoring import violates


def _apt_hosts(host):
    text = host.run("cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources "
                    "2>/dev/null").stdout
    return sorted(set(re.findall(r"https?://([^/\s:]+)", text)))


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@violates("printf 'nameserver 192.0.2.53\\noptions timeout:1 attempts:1\\n' > /etc/resolv.conf")
def test_resolves_what_the_image_depends_on(host, image_spec):
    names = _apt_hosts(host) + [s for s in image_spec.time_servers if not _is_ip(s)]
    assert names, "the image names no apt source host and no time server host"
    failed = [n for n in names if host.run(f"getent ahosts {n}").rc != 0]
    assert not failed, f"the image's resolver cannot resolve {', '.join(failed)}"
