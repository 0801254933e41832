"""Making a candidate: the image spec, the base image (built offline from the host's apt mirror, or
given), Packer's build, the hardening plan the build applies, and the per-build seed and key."""
