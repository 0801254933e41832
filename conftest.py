"""pytest wiring for `pytest cis_checks acceptance`: the check plugin (options --role, --level,
--controls, --baseline; check files; facts; CIS metadata in the JUnit) and the VM layer's plugin
(--image, --violate, --artifact)."""

pytest_plugins = ["pipeline.checks.plugin", "pipeline.vm.pytest_plugin"]
