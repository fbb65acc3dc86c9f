"""Modbus: register maps, request planning and the TCP driver."""
