"""Fleets of hosts running published images: local QEMU hosts, inventories of SSH hosts, and what
each host says it runs."""
