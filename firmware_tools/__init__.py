"""Tools for field technicians and maintainers: demo, local broker, live view."""
