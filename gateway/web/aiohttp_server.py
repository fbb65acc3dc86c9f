"""aiohttp's server half, loaded without its client: the status page's budget is 10 MB, and the client is 3.4.

``import aiohttp`` runs the package's ``__init__``, which imports the HTTP
client, and the client's connector builds its TLS contexts (the whole CA
store) at import time. The server needs none of it, so when aiohttp is not
loaded yet the package is registered without running ``__init__`` and only
``aiohttp.web`` (the server modules) is imported. The rest of the package
loads the first time anything else in the process asks ``aiohttp`` for a name
it lacks (``aiohttp.ClientSession``), so other users of aiohttp see the whole
library. If a future aiohttp does not allow this, the whole package is
imported as usual: it costs memory, never correctness.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib import metadata
from importlib.machinery import PathFinder
from types import ModuleType


def server_half() -> ModuleType:
    """The ``aiohttp.web`` module, importing as little of the rest of aiohttp as it can."""
    if "aiohttp" in sys.modules:
        return importlib.import_module("aiohttp.web")
    spec = importlib.util.find_spec("aiohttp")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError("aiohttp is not installed; reinstall gridgate", name="aiohttp")
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(name: str) -> object:
        """Run the package's ``__init__`` (client and all) the first time a name is missing."""
        if name.startswith("__") or PathFinder.find_spec(f"aiohttp.{name}", package.__path__):
            raise AttributeError(name)  # a submodule being imported, or introspection
        del vars(package)["__getattr__"]
        loader.exec_module(package)
        return getattr(package, name)

    # __version__ is the one name the server modules read from the package (the Server header)
    vars(package).update(__version__=metadata.version("aiohttp"), __getattr__=complete)
    sys.modules["aiohttp"] = package
    try:
        return importlib.import_module("aiohttp.web")
    except (ImportError, AttributeError):
        for name in [m for m in sys.modules if m == "aiohttp" or m.startswith("aiohttp.")]:
            del sys.modules[name]
        return importlib.import_module("aiohttp.web")
