"""The JSON Schemas of docs/schemas, and which one a published topic must follow.

Every message a test subscriber receives is checked here, so any message kind
the gateway publishes without a schema, or with fields the schema does not
know, fails the test that saw it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"

# Topic (its end, under any prefix) → schema file; None: sent *to* the gateway, not by it.
TOPIC_SCHEMAS: list[tuple[re.Pattern[str], str | None]] = [
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/devices/[a-z0-9][a-z0-9_.-]*/status$"), "device-status.json"),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/state$"), "gateway-state.json"),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/events$"), "event.json"),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/telemetry/[a-z0-9][a-z0-9_.-]*$"), "telemetry.json"),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/notices$"), "notice.json"),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/health$"), "health.json"),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/open_events$"), "open-events.json"),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/commands/response$"), "command-response.json"),
    (re.compile(r"/_replies/[^/]+$"), "command-response.json"),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/commands/request$"), None),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/config/status$"), "config-status.json"),
    (re.compile(r"/[a-z0-9][a-z0-9_.-]*/config/bundle$"), None),
]


class ContractViolation(AssertionError):
    """A published message that no schema covers, or that breaks its schema."""


@cache
def _registry() -> Registry:
    resources = [
        (path.name, Resource.from_contents(json.loads(path.read_text()))) for path in SCHEMAS.glob("*.json")
    ]
    return Registry().with_resources(resources)


@cache
def validator(schema_name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / schema_name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(), format_checker=FormatChecker())


def schema_for_topic(topic: str) -> str | None:
    for pattern, schema in TOPIC_SCHEMAS:
        if pattern.search(topic):
            return schema
    raise ContractViolation(
        f"{topic}: no schema in docs/schemas covers this topic (add one, and a route here)"
    )


def check(schema_name: str, payload: Any, *, where: str) -> None:
    """Raise ContractViolation listing every way ``payload`` breaks ``schema_name``."""
    errors = sorted(validator(schema_name).iter_errors(payload), key=lambda e: list(e.path))
    if errors:
        problems = "; ".join(f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors)
        raise ContractViolation(f"{where} breaks {schema_name}: {problems}")
