"""Shipped example site configs (``*.toml``) and device profiles (``profiles/*.toml``).

A package only so that an installed gateway carries them as package data and
finds them from any directory; there is no code here.
"""
