"""The daemon (``gateway.service.daemon``): wires the layers together and supervises their tasks.

Nothing is imported here, so the log set-up can run before Numba loads.
"""
