"""JSON Schemas generated from fastsd's models, for editors and other tools."""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA_DIR = Path(__file__).parent
SESSION_SCHEMA = SCHEMA_DIR / "session.schema.json"


def session_schema_text() -> str:
    """The JSON Schema of session.yaml, as generated from `fastsd.session.SessionFile`."""
    from fastsd.session import SessionFile

    schema = SessionFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://fastsd.dev/schemas/session.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
