"""Site configuration: TOML in, validated models out, every problem reported with its path."""

from gateway.config.load import load_config, parse_config
from gateway.config.models import GatewayConfig

__all__ = ["GatewayConfig", "load_config", "parse_config"]
