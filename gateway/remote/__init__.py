"""Commands from the command center (and, later, signed config bundles)."""
