"""The CIS baseline as tests: catalogue, company baseline, facts gathered once per host, check kinds,
and the pytest plugin that turns check files into test items."""
