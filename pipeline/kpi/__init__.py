"""The discipline measured: MTTR of emergencies, drift, image age, the failure budget, and which
images are due for a rebuild."""
