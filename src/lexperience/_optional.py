"""Lazy imports of optional dependencies with an install hint when they are missing."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["is_installed", "require"]


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or a broken module
        return False


def require(module: str, extra: str, *, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``lexperience[extra]``.

    Only a missing ``module`` itself (or one of its parents) is rewritten into the install hint; an
    ImportError raised *inside* an installed package (a broken install) is re-raised as it is, so it
    is not misreported as "not installed".
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module == missing or module.startswith(missing + ".")):
            raise MissingDependencyError(module=module, extra=extra, feature=feature) from exc
        raise
