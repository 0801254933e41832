"""Every agent the image spec lists is enabled, running, and answers its probe."""

import shlex

from pipeline.checks.authoring import violates

# 60 s: the node exporter's full answer took over 10 s on a guest of three booted at once on two cores under
# TCG (each web build of the fleet's batch failed on it there); an agent that is down still fails at once.
HTTP_GET = ("python3 -c 'import sys, urllib.request; "
            "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=60).read().decode(errors=\"replace\"))' ")


@violates("systemctl disable --now prometheus-node-exporter.service")
def test_agent_enabled_running_and_answering(host, agent):
    findings = []
    service = host.service(agent.service)
    if not service.is_enabled:
        findings.append(f"{agent.service} is not enabled")
    if not service.is_running:
        findings.append(f"{agent.service} is not running")
    probe = agent.probe
    if probe.get("http"):
        result = host.run(HTTP_GET + shlex.quote(probe["http"]))
    elif probe.get("command"):
        result = host.run(probe["command"])
    else:
        result = None
    if result is not None:
        if result.rc != 0:
            # The last line of a traceback is what went wrong; its first lines say only where.
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            findings.append(f"probe of {agent.name} failed (exit {result.rc}): {last[:300]}")
        elif probe.get("expect") and probe["expect"] not in result.stdout:
            findings.append(f"probe of {agent.name} answered without {probe['expect']!r}")
    assert not findings, "; ".join(findings)
