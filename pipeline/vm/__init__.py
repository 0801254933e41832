"""Booting images under QEMU (KVM when a probe proves it works, TCG otherwise) on ephemeral overlays,
the per-boot NTP server, and mounting an artifact read-only; the transport the suites run over."""
