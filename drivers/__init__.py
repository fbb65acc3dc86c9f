"""Field-device protocols and their simulators. Drivers know nothing of MQTT."""
