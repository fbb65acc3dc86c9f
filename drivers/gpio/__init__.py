"""Dry contacts on the Pi's or Jetson's GPIO header, read with libgpiod's Python bindings (v2)."""
