"""The JSON contract of ``--format json``: one shape per command, whatever the ticker count.

Every payload is an object whose ``schema`` key names the command and the
contract's version (``forecaster.evaluate/1``); per-ticker records are always
in a list, summaries are extra keys. :data:`SCHEMAS` holds a JSON Schema
(draft 2020-12 keywords) per command; :func:`validate` checks a payload against
one with the subset of keywords these schemas use, so the tests need no extra
package. A change that breaks a script bumps the version.

Importing this module imports nothing heavy (``forecast --help`` stays fast).
"""

from __future__ import annotations

from typing import Any

#: Version of every command's JSON contract (the number after the slash of ``schema``).
CONTRACT_VERSION = 1


def schema_id(command: str) -> str:
    """The ``schema`` value of ``command``'s JSON output, e.g. ``forecaster.predict/1``."""
    return f"forecaster.{command}/{CONTRACT_VERSION}"


_NUMBER = {"type": "number"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
_NULLABLE_DATE = {"type": ["string", "null"], "pattern": r"^\d{4}-\d{2}-\d{2}$"}
_OBJECT = {"type": "object"}
_NULLABLE_OBJECT = {"type": ["object", "null"]}

#: VaR/ES of one forecast: ``levels`` maps a level ("0.01") to {var, es}, or is null with a reason.
_RISK = {
    "type": ["object", "null"],
    "required": ["distribution", "levels", "reason"],
    "properties": {
        "distribution": _STRING,
        "levels": {
            "type": ["object", "null"],
            "additionalProperties": {
                "type": "object",
                "required": ["var", "es"],
                "properties": {"var": _NUMBER, "es": _NUMBER},
            },
        },
        "reason": _NULLABLE_STRING,
    },
}


def _envelope(command: str, required: dict[str, Any], optional: dict[str, Any] | None = None):
    properties = {"schema": {"const": schema_id(command)}, **required, **(optional or {})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"forecast {command} --format json",
        "type": "object",
        "required": ["schema", *required],
        "properties": properties,
        "additionalProperties": False,
    }


_EVALUATION = {
    "type": "object",
    "required": [
        "ticker", "model_version", "init", "horizon", "estimator", "test_start", "test_end",
        "n", "mode", "reference", "regime", "models", "diebold_mariano", "notes",
    ],
    "properties": {
        "ticker": _STRING,
        "model_version": _STRING,
        "init": _NULLABLE_STRING,
        "horizon": {"type": "integer", "minimum": 1},
        "estimator": _STRING,
        "test_start": _DATE,
        "test_end": _DATE,
        "n": {"type": "integer", "minimum": 0},
        "mode": _STRING,
        "reference": _STRING,
        "regime": _OBJECT,
        "models": {"type": "object", "additionalProperties": _OBJECT},
        "diebold_mariano": _OBJECT,
        "notes": {"type": "array", "items": _STRING},
        "risk": _OBJECT,
    },
}

_FORECAST = {
    "type": "object",
    "required": [
        "ticker", "status", "origin", "horizon", "vol", "variance", "model_version", "init",
        "risk", "engine", "error",
    ],
    "additionalProperties": False,
    "properties": {
        "ticker": _STRING,
        "status": {"enum": ["ok", "error"]},
        "origin": _NULLABLE_DATE,
        "horizon": {"type": ["integer", "null"], "minimum": 1},
        "vol": _NULLABLE_NUMBER,
        "variance": _NULLABLE_NUMBER,
        "model_version": _NULLABLE_STRING,
        "init": _NULLABLE_STRING,
        "risk": {
            "type": ["object", "null"],
            "required": ["distribution", "horizon", "levels", "fit", "reason"],
            "properties": {**_RISK["properties"], "horizon": {"type": "integer"}},
        },
        "engine": _NULLABLE_STRING,
        "error": _NULLABLE_STRING,
    },
}

_ISSUED = {
    "type": "object",
    "required": [
        "origin", "horizon", "model_version", "init", "estimator", "variance", "vol",
        "created_at", "realized_var", "realized_return", "risk",
    ],
    "additionalProperties": False,
    "properties": {
        "origin": _DATE,
        "horizon": {"type": "integer", "minimum": 1},
        "model_version": _STRING,
        "init": _NULLABLE_STRING,
        "estimator": _STRING,
        "variance": _NUMBER,
        "vol": _NUMBER,
        "created_at": _STRING,
        "realized_var": _NULLABLE_NUMBER,
        "realized_return": _NULLABLE_NUMBER,
        "risk": _RISK,
    },
}

_SPLIT = {
    "type": "object",
    "required": [
        "train_start", "train_end", "n_train", "validation_start", "validation_end",
        "n_validation", "test_start", "test_end", "n_test",
    ],
    "properties": {
        **{
            f"{part}_{edge}": _DATE
            for part in ("train", "validation", "test")
            for edge in ("start", "end")
        },
        **{f"n_{part}": {"type": "integer"} for part in ("train", "validation", "test")},
    },
}

_METRICS = {
    "type": "object",
    "required": ["qlike", "mse", "bias"],
    "properties": {"qlike": _NUMBER, "mse": _NUMBER, "bias": _NUMBER},
}

_SERIES = {
    "type": "object",
    "required": ["ticker", "split", "validation"],
    "additionalProperties": False,
    "properties": {"ticker": _STRING, "split": _SPLIT, "validation": _METRICS},
}

_CACHED = {
    "type": "object",
    "required": [
        "ticker", "rows", "start", "end", "source", "description", "cache", "from_cache",
        "added", "revised", "removed",
    ],
    "additionalProperties": False,
    "properties": {
        "ticker": _STRING,
        "rows": {"type": "integer", "minimum": 0},
        "start": _DATE,
        "end": _DATE,
        "source": _STRING,
        "description": _STRING,
        "cache": _NULLABLE_STRING,
        "from_cache": {"type": "boolean"},
        "added": {"type": ["integer", "null"]},
        "revised": {"type": ["integer", "null"]},
        "removed": {"type": ["integer", "null"]},
    },
}

#: One JSON Schema per command with ``--format json`` that this contract covers.
SCHEMAS: dict[str, dict[str, Any]] = {
    "evaluate": _envelope(
        "evaluate",
        {
            "results": {"type": "array", "items": _EVALUATION},
            "panel": _NULLABLE_OBJECT,
        },
    ),
    "predict": _envelope(
        "predict",
        {
            "forecasts": {"type": "array", "items": _FORECAST},
            "failed": {"type": "array", "items": _STRING},
        },
    ),
    "history": _envelope(
        "history",
        {
            "tickers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["ticker", "forecasts", "score"],
                    "additionalProperties": False,
                    "properties": {
                        "ticker": _STRING,
                        "forecasts": {"type": "array", "items": _ISSUED},
                        "score": _NULLABLE_OBJECT,
                    },
                },
            },
        },
    ),
    "train": _envelope(
        "train",
        {
            "version": _STRING,
            "champion": {"type": "boolean"},
            "tickers": {"type": "array", "items": _STRING, "minItems": 1},
            "fine_tuned_from": _NULLABLE_STRING,
            "init": _STRING,
            "horizon": {"type": "integer", "minimum": 1},
            "estimator": _STRING,
            "series": {"type": "array", "items": _SERIES, "minItems": 1},
            "training": {
                "type": "object",
                "required": ["epochs_run", "best_epoch", "seconds"],
                "properties": {
                    "epochs_run": {"type": "integer"},
                    "best_epoch": {"type": "integer"},
                    "seconds": _NUMBER,
                },
            },
            "scale": _NUMBER,
            "timings": {
                "type": "object",
                "required": ["load_seconds", "fit_seconds", "total_seconds"],
                "additionalProperties": False,
                "properties": {
                    "load_seconds": _NUMBER,
                    "fit_seconds": _NUMBER,
                    "total_seconds": _NUMBER,
                },
            },
        },
    ),
    "fetch": _envelope(
        "fetch",
        {
            "tickers": {"type": "array", "items": _CACHED},
            "skipped": {"type": "array", "items": _STRING},
        },
    ),
}


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def validate(instance: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Where ``instance`` breaks ``schema``: a list of ``"$.path: reason"`` (empty: it conforms).

    Handles the keywords :data:`SCHEMAS` uses: type, const, enum, pattern,
    minimum, minItems, required, properties, additionalProperties, items.
    """
    import re

    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is_type(instance, name) for name in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(instance).__name__}"]
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}, got {instance!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: expected one of {schema['enum']}, got {instance!r}")
    if isinstance(instance, str) and "pattern" in schema:
        if not re.search(schema["pattern"], instance):
            errors.append(f"{path}: {instance!r} does not match {schema['pattern']}")
    if _is_type(instance, "number") and "minimum" in schema and instance < schema["minimum"]:
        errors.append(f"{path}: {instance} is below {schema['minimum']}")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for index, item in enumerate(instance):
                errors += validate(item, schema["items"], f"{path}[{index}]")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        errors += [
            f"{path}: missing key {key!r}" for key in schema.get("required", ()) if key not in instance
        ]
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in properties:
                errors += validate(value, properties[key], f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                errors += validate(value, extra, f"{path}.{key}")
    return errors
