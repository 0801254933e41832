"""The local image store, where published versions never change, and the version contract
`golden-<name>-YYYY.MM.DD+N`."""
