"""The CIS baseline as tests: catalogue, company baseline, facts gathered once per host, check kinds,
and the pytest plugin that turns check files into test items. Check files import their API from
`pipeline.checks.authoring`.
"""

# The per-boot account the suite logs in with: it exists only in a boot's ephemeral overlay, and
# the checks of accounts leave it out by name (the `test_user` fixture). The VM layer creates it.
SUITE_USER = "golden-test"
