"""Secrets out of server-sourced text: the API key and any `Bearer <token>`.

Anything a server sends back may echo the Authorization header (an error body
quoting it, a debug dump). Every such text is passed through `Redactor` before it
is stored (CSV error column), logged or shown. Pure functions; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MASK = "[REDACTED]"
# RFC 6750 b64token: letters, digits, -._~+/ then optional '='. It never holds a
# quote or a backslash, so masking inside a JSON string keeps the JSON valid.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*")
MIN_SECRET_LEN = 4  # shorter "keys" would mask ordinary text (and break JSON)


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with every secret and every `Bearer <token>` replaced by the mask."""
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    for s in secrets:
        if len(s) >= MIN_SECRET_LEN and s in text:
            text = text.replace(s, MASK)
    return text


@dataclass(frozen=True)
class Redactor:
    secrets: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        return redact_text(text, self.secrets)
