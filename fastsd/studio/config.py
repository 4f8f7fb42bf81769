"""What one studio process serves: the data root, the login, the runtime, the limits."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from fastsd.layout import DataRoot

DEFAULT_PORT = 7861
MAX_UPLOAD_MB = 40
MAX_PENDING_FILES = 500


@dataclass(frozen=True)
class StudioConfig:
    """The settings of one studio process (the password itself stays out of repr)."""

    root: DataRoot
    user: str
    password: str = field(repr=False)
    runtime: str = "local"
    max_upload_bytes: int = MAX_UPLOAD_MB * 2**20
    max_pending_files: int = MAX_PENDING_FILES
    secure_cookies: bool = False
    fastsd: tuple[str, ...] = (sys.executable, "-m", "fastsd")
    webui_port: int = 7860
    allowed_hosts: tuple[str, ...] = ()  # host names it is served under (IP addresses and localhost always are)
