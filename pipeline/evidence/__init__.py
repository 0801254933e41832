"""A run's evidence and the decision on it: the run directory, the suites' JUnit, the gate and the
HTML report."""
