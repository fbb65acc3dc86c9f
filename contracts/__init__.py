"""What drivers and the gateway core share, below both: readings, errors, config bases, the driver seam.

Nothing here imports ``gateway`` or ``drivers``; both import from here.
"""
