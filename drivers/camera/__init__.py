"""IP cameras pushing alarms over HTTP: Hikvision-style XML, Dahua-style events, JSON webhooks."""
