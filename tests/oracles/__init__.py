"""Controller rules encoded from their upstream source, applied to generated objects (see README.md)."""
