"""GridGate: an edge gateway for city grid-management command centers."""

__version__ = "0.1.0"
