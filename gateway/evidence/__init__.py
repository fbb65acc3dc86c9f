"""Picture evidence for events: camera snapshots and pictures pushed with alarms, kept on disk."""
