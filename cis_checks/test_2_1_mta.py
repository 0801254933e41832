"""2.1.21 Mail transfer agent local-only: judged on the sockets listening now (`ss`), whatever the MTA."""

import ipaddress

from pipeline.checks.authoring import control, require


def local_address(socket):
    """`ss` local address -> (host, port): `0.0.0.0:25`, `[::1]:25`, `*:25`, `127.0.0.1%lo:25`."""
    host, _, port = socket.rpartition(":")
    return host.strip("[]").split("%")[0], port


def is_loopback(host):
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False                 # `*` means every address
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


@control("2.1.21", violate="mta_listen_everywhere", needs=["listening"], services=["network"])
def test_mta_local_only(facts, control_values):
    """An MTA may listen on loopback only: a mail port on any other address accepts mail from the network."""
    ports = {str(p) for p in control_values["params"]["ports"]}
    findings = []
    for line in facts.lines("listening"):
        words = line.split()
        if len(words) < 5 or words[0] != "tcp":
            continue
        host, port = local_address(words[4])
        if port in ports and not is_loopback(host):
            findings.append(f"{words[4]} is listening ({' '.join(words[6:]) or 'process unknown'})")
    require(findings)
