"""2.3.3 chrony: its time sources and the user it runs as, as chronyd itself reads its configuration.

`chronyd -p` prints the configuration chronyd would run with (chrony.conf and its confdir/include
files); sources in `sourcedir` directories are loaded separately, so their files are added.
"""

from pipeline.checks import facts as fact_sections
from pipeline.checks.authoring import control, require

fact_sections.register(
    "chrony_config",
    "echo '### chronyd -p'; c=$(chronyd -p 2>&1); printf '%s\\n' \"$c\"; "
    "for d in $(printf '%s\\n' \"$c\" | awk '$1 == \"sourcedir\" {print $2}'); do for f in \"$d\"/*.sources; do "
    "[ -f \"$f\" ] && { echo \"### $f\"; cat \"$f\"; }; done; done")

SOURCE_DIRECTIVES = ("server", "pool", "peer")


def directives(facts, name):
    """Every `name ARG ...` line chronyd reads: [(file, line, ARG)]."""
    return [(path, line.strip(), (line.split() + [""])[1]) for path, text in facts.files("chrony_config").items()
            for line in text.splitlines() if line.split()[:1] == [name]]


@control("2.3.3.1", needs=["chrony_config"], services=["time"],
         violate="echo 'pool 2.debian.pool.ntp.org iburst' > /etc/chrony/conf.d/violation-$GOLDEN_SCENARIO.conf")
def test_chrony_authorized_timeservers(facts, control_values):
    """Time comes only from the company's authorized servers, and from at least one of them."""
    authorized = control_values["params"]["servers"]
    sources = [s for name in SOURCE_DIRECTIVES for s in directives(facts, name)]
    findings = [] if sources else ["chrony has no server, pool or peer configured"]
    findings += [f"{path}: `{line}` is not an authorized time server (authorized: {', '.join(authorized)})"
                 for path, line, host in sources if host not in authorized]
    require(findings)


@control("2.3.3.2", needs=["chrony_config", "processes"], services=["time"],
         violate="echo 'user root' > /etc/chrony/conf.d/violation-$GOLDEN_SCENARIO.conf && systemctl restart chrony")
def test_chrony_runs_as_chrony_user(facts, control_values):
    """chronyd drops root: every running chronyd is the unprivileged user, and so is the next start's."""
    user = control_values["params"]["user"]
    running = [line.split(None, 2) + [""] for line in facts.lines("processes")]
    findings = [f"chronyd runs as {who}: {args}" for who, comm, args, *_ in running
                if comm == "chronyd" and who != user]
    configured = directives(facts, "user")
    if configured and configured[-1][2] != user:       # the last `user` line is the one chronyd applies
        findings.append(f"{configured[-1][0]} sets `{configured[-1][1]}`: the next start runs chronyd as "
                        f"{configured[-1][2]}, expected {user}")
    require(findings)
