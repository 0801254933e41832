"""Releasing published images: channels, revocation and lifecycle, and the same tested bytes as an
AMI (EBS snapshot) or a vSphere template (OVA)."""
