"""Reading and writing positions in an episode: ``754.0`` <-> ``"12:34"``."""

from __future__ import annotations

import math
import re

from ..errors import InvalidInputError

__all__ = ["format_timestamp", "parse_timestamp"]

_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)$")


def parse_timestamp(value: str | float | int) -> float:
    """Seconds from ``"1:02:03"``, ``"12:34"``, ``"12:34.5"``, ``"00:12:34,500"`` or ``"754"``.

    Raises:
        InvalidInputError: the text is not a time, or it is negative or not finite.
    """
    if isinstance(value, bool):
        raise InvalidInputError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        match = _CLOCK.match(text)
        if match:
            hours, minutes, secs = match.groups()
            if hours is not None and int(minutes) >= 60:
                raise InvalidInputError(f"not a time: {value!r} (minutes must be below 60)")
            if float(secs.replace(",", ".")) >= 60:
                raise InvalidInputError(f"not a time: {value!r} (seconds must be below 60)")
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs.replace(",", "."))
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise InvalidInputError(
                    f"not a time: {value!r}; write it as seconds (754), mm:ss (12:34) or "
                    "hh:mm:ss (1:02:03)"
                ) from None
    else:
        raise InvalidInputError(f"not a time: {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInputError(f"a time must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def format_timestamp(seconds: float, *, precise: bool = False) -> str:
    """``754.2`` -> ``"12:34"`` (``"1:02:03"`` past an hour); ``precise`` adds milliseconds in
    the WebVTT form ``"00:12:34.200"``."""
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInputError(f"cannot format the time {seconds!r}")
    if precise:
        millis = round(seconds * 1000)
        h, rest = divmod(millis, 3_600_000)
        m, rest = divmod(rest, 60_000)
        s, ms = divmod(rest, 1000)
        return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"
    whole = int(seconds)  # floor: "12:34" is where 12:34.9 lies, never a moment not yet reached
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
