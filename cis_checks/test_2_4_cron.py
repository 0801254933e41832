"""2.4.2 at: restricted to the users in /etc/at.allow, where at is installed."""

from pipeline.checks.authoring import control, findings_for, require


@control("2.4.2.1", violate="fake_package at && rm -f /etc/at.allow", needs=["packages"], services=["cron"])
def test_at_restricted(facts, control_values):
    """With at installed, at.allow exists and only root can change it (without it, at.deny lets everyone else in)."""
    require(findings_for(control_values, facts) if "at" in facts.packages else [])
