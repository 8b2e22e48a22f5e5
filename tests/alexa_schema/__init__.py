"""Amazon's Alexa Smart Home message schema, vendored (see SOURCE.md), and a validator.

The upstream file has one trailing comma, which is not JSON: it is stripped in memory
before loading, the file itself stays byte-for-byte as published.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).with_name("alexa_smart_home_message_schema.json")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


@functools.cache
def _validator() -> jsonschema.Draft4Validator:
    text = _TRAILING_COMMA.sub(r"\1", SCHEMA_PATH.read_text(encoding="utf-8"))
    schema = json.loads(text)
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def validate_message(message: Any) -> None:
    """Raise AssertionError listing every schema violation of an Alexa message."""
    errors = sorted(_validator().iter_errors(message), key=lambda e: list(e.path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
        raise AssertionError("Alexa schema violations:\n" + "\n".join(lines[:20]))
