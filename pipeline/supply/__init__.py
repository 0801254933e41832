"""The supply chain of a candidate: SBOM from the artifact, vulnerability feeds and scan, signed
in-toto attestations, and verification of a published image."""
