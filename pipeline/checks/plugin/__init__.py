"""The pytest plugin behind `pytest cis_checks acceptance`, one module per job:

| module | job |
| --- | --- |
| `session` | the options (--role, --level, --controls, --baseline, --exceptions, --spec, ...) and the session's state |
| `sharing` | facts gathered once per host, shared by the xdist workers |
| `collect` | check files and the catalogue become test items carrying their CIS metadata into the JUnit |
| `waivers` | a failed control covered by an unexpired exception is reported as waived |
| `fixtures` | what tests ask for: facts, baseline, control_values, image_spec, test_user |

The check layer never boots anything: `--image`, `--violate` and `--artifact` come from the VM
layer's own plugin (`pipeline.vm.pytest_plugin`), as testinfra's modules never import a backend.
"""

pytest_plugins = ["pipeline.checks.plugin.session", "pipeline.checks.plugin.sharing",
                  "pipeline.checks.plugin.collect", "pipeline.checks.plugin.waivers",
                  "pipeline.checks.plugin.fixtures"]

# Check files written before the authoring API had its own module import it from here; `golden
# impact --from OLD-REF` still loads them.
from pipeline.checks.authoring import (  # noqa: E402,F401
                  ControlFailed,
                  control,
                  findings_for,
                  require,
                  violates,
)
