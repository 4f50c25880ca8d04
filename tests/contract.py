"""Parse a command's ``--format json`` output and check it against its schema."""

from __future__ import annotations

import json
from typing import Any

from forecaster.cli.schemas import SCHEMAS, validate


def checked(text: str, command: str) -> dict[str, Any]:
    """``text`` parsed, after asserting it conforms to ``command``'s JSON Schema."""
    payload = json.loads(text)
    errors = validate(payload, SCHEMAS[command])
    assert not errors, f"forecast {command} --format json breaks its schema: {errors[:5]}"
    return payload
