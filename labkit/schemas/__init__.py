"""JSON Schemas for what labkit reads back: a run's manifest and its JSON capture files.

Each ``NAME.schema.json`` here ships as package data; :func:`check` validates a loaded
document against one with jsonschema and turns the first violation into one line.
Integers that become times, pids, fds or sizes must fit int64 and be non-negative, so that
no later arithmetic or export overflows.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

from labkit.errors import CorruptCaptureError

INT64_MAX = (1 << 63) - 1


# jsonschema's optional format checkers' libraries, imported by jsonschema at its import:
# rfc3987_syntax builds a grammar (seconds), isoduration and the rest about 50 ms more
FORMAT_LIBRARIES = ("fqdn", "idna", "isoduration", "jsonpointer", "rfc3339_validator",
                    "rfc3986_validator", "rfc3987", "rfc3987_syntax", "uri_template",
                    "webcolors")
# hidden from jsonschema's import: all of them as the ``labkit`` command (see
# labkit.cli.main), whose process is its own; in a notebook or a test only the slow one,
# so that the user's own jsonschema keeps its format checkers
hidden_from_jsonschema: tuple[str, ...] = ("rfc3987_syntax",)


def _jsonschema() -> Any:
    """``jsonschema``, imported with :data:`hidden_from_jsonschema` hidden (their format
    checkers left out: labkit's schemas use no ``format``); each is importable again after."""
    if "jsonschema" not in sys.modules:
        hidden = [m for m in hidden_from_jsonschema if m not in sys.modules]
        for m in hidden:
            sys.modules[m] = None  # type: ignore[assignment]  # an ImportError
        try:
            import jsonschema
        finally:
            for m in hidden:
                del sys.modules[m]  # anyone else may still import it
    import jsonschema

    return jsonschema


@functools.cache
def validator(name: str) -> Any:
    """The compiled validator of ``NAME.schema.json``."""
    jsonschema = _jsonschema()

    from importlib import resources  # 5 ms (tempfile, shutil): not for every command

    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _where(path: Any) -> str:
    parts = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return parts.lstrip(".") or "the document"


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check(doc: Any, name: str, path: Path | str, what: str, fix: str) -> None:
    """Raise a one-line :class:`CorruptCaptureError` unless ``doc`` is valid against
    ``NAME.schema.json``; it names ``what`` at ``path``, the offending field, and ``fix``."""
    jsonschema = _jsonschema()

    try:
        error = jsonschema.exceptions.best_match(validator(name).iter_errors(doc))
    except RecursionError:
        raise CorruptCaptureError(f"{what} {path} is nested too deeply; {fix}") from None
    if error is None:
        return
    where = _short(_where(error.absolute_path), 60).replace("\n", "\\n")
    message = _short(error.message.replace("\n", "\\n"))
    raise CorruptCaptureError(f"{what} {path} has an invalid {where} ({message}); {fix}")
