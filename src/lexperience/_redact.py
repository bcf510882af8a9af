"""Keep secrets out of messages: every error text that wraps a foreign exception goes through
:func:`redact` before it reaches a user, a log line or a service response.

Two nets: the exact values of the keys this process knows (:func:`register_secret`, called for
every API key the cloud backends resolve), and the shapes of common keys and auth headers, for
keys that never passed through lexperience (a user's own client configured by environment).
"""

from __future__ import annotations

import re
import threading

__all__ = ["redact", "register_secret"]

_LOCK = threading.Lock()
_SECRETS: set[str] = set()
_MIN_SECRET = 8  # shorter "keys" (placeholders such as "not-needed") are not worth hiding

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), "***"),  # OpenAI (sk-..., sk-proj-...)
    (re.compile(r"\br8_[A-Za-z0-9]{20,}"), "***"),  # Replicate
    (re.compile(r"(?i)\b(bearer|token)(\s+)[A-Za-z0-9._\-]{16,}"), r"\1\2***"),
    (
        re.compile(
            r"(?i)((?:authorization|xi-api-key|api[_-]?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{8,}"
        ),
        r"\1***",
    ),
)


def register_secret(value: str) -> None:
    """Remember ``value`` as a secret: :func:`redact` hides it from then on."""
    if isinstance(value, str) and len(value) >= _MIN_SECRET:
        with _LOCK:
            _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` with every known secret and anything shaped like a key replaced by ``***``."""
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
