"""The cabinet's own view of the gateway: a status page for technicians and metrics for operations."""
