"""Regenerate fastsd/schemas/session.schema.json from the session models (a test checks it is current)."""

from fastsd.fsutil import atomic_write_text
from fastsd.schemas import SESSION_SCHEMA, session_schema_text

atomic_write_text(SESSION_SCHEMA, session_schema_text())
print(f"wrote {SESSION_SCHEMA}")
