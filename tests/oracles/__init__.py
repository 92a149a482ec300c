"""Controller rules encoded as small functions, each module citing the upstream source it follows (see README.md)."""
