"""The discipline measured: MTTR of emergencies, drift, image age, the failure budget, and which
images are due for a rebuild."""

import os


def store_dashboard(store_root):
    """Where a store keeps its KPI dashboard, `<store>/kpi/dashboard.html`: every finished rollout rewrites
    it, and the run and rollout reports link to it."""
    return os.path.join(store_root, "kpi", "dashboard.html")
