"""Path checks for names and files that may come from users (a service exposes all of them).

* :func:`safe_name`: a file *name* (an output ``stem``, a persona name in a folder): letters,
  digits, ``.``, ``_`` and ``-``, not starting with a dot, no separators, so it can never point
  outside the folder it is used in.
* :func:`resolve_inside`: a path from a file (a persona's portrait or voice, a settings file's
  persona) resolved against that file's folder; a relative path may not climb out of it with
  ``..``, and with ``confine=True`` an absolute path must lie inside it too.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ConfigurationError, InvalidInputError

__all__ = ["resolve_inside", "safe_name"]

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def safe_name(name: str, *, what: str = "name") -> str:
    """``name`` if it is a plain file name; :class:`InvalidInputError` otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidInputError(
            f"{what} must be a plain file name (letters, digits, '.', '_', '-'; no path "
            f"separators, no leading dot, no '..'), got {name!r}"
        )
    return name


def resolve_inside(value: str | Path, base: Path, *, what: str, confine: bool = False) -> Path:
    """Resolve ``value`` against the folder ``base``.

    Raises:
        ConfigurationError: a relative path climbs out of ``base``, or (``confine``) an absolute
            path lies outside it.
    """
    path = Path(value).expanduser()
    root = base.resolve()
    if path.is_absolute():
        resolved = path.resolve()
        if confine and not resolved.is_relative_to(root):
            raise ConfigurationError(
                f"{what} {str(value)!r} is outside {root}: only files inside that folder are "
                "allowed here"
            )
        return resolved
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root):
        raise ConfigurationError(
            f"{what} {str(value)!r} climbs out of {root} ('..'): name a file inside that folder, "
            "or give an absolute path"
        )
    return resolved
