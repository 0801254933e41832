"""pytest wiring for `pytest cis_checks acceptance`: the golden plugin (options --image, --role,
--level, --controls, --baseline; check files; facts; CIS metadata in the JUnit)."""

pytest_plugins = ["pipeline.checks.plugin"]
