"""Finding, checking and importing the user's DreamTalk checkout (github.com/ali-vilab/dreamtalk).

lexperience ships none of DreamTalk: it imports the user's checkout at run time. DreamTalk is not
a package; its top-level folders have generic names (``core``, ``configs``, ``generators``). So
that they never shadow (or are shadowed by) other modules of those names, they are imported from
the checkout's folders explicitly, and taken out of ``sys.modules`` again afterwards (whatever
was there before is put back); the classes keep working, and two checkouts can be used in one
process.

DreamTalk's ``core/utils.py`` imports dlib at the top although only its portrait crop uses it;
lexperience crops portraits itself (OpenCV), so when dlib is not installed a placeholder module
stands in for it during the import (any use of it raises ImportError).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._optional import is_installed
from ..errors import ConfigurationError

__all__ = [
    "REQUIRED_FILES",
    "Checkout",
    "CheckoutModules",
    "import_checkout",
    "locate_checkout",
]

log = logging.getLogger(__name__)

ENV_HOME = "DREAMTALK_HOME"

#: Files every DreamTalk checkout has (and the stand-in used by the tests has too).
REQUIRED_FILES = (
    "configs/default.py",
    "core/utils.py",
    "core/networks/diffusion_net.py",
    "core/networks/diffusion_util.py",
    "generators/face_model.py",
    "generators/renderer_conf.yaml",
)
_PACKAGES = ("configs", "core", "generators")
_MODULES = (
    "configs.default",
    "core.networks.diffusion_util",
    "core.networks.diffusion_net",
    "generators.face_model",
)
#: The sample style clip and head pose of DreamTalk's README demo.
SAMPLE_STYLE = "data/style_clip/3DMM/M030_front_neutral_level1_001.mat"
SAMPLE_POSE = "data/pose/RichardShelby_front_neutral_level1_001.mat"


@dataclass(frozen=True)
class Checkout:
    """A checked DreamTalk checkout folder."""

    root: Path

    @property
    def renderer_conf(self) -> Path:
        return self.root / "generators" / "renderer_conf.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def sample_style(self) -> Path:
        return self.root / SAMPLE_STYLE

    @property
    def sample_pose(self) -> Path:
        return self.root / SAMPLE_POSE


@dataclass(frozen=True)
class CheckoutModules:
    """What lexperience uses of a checkout: its classes and its default configuration."""

    root: Path
    DiffusionNet: Any
    NoisePredictor: Any
    VarianceSchedule: Any
    FaceGenerator: Any
    get_cfg_defaults: Any


def _check_layout(root: Path, origin: str) -> Checkout:
    if not root.is_dir():
        raise ConfigurationError(f"the DreamTalk checkout {root} ({origin}) is not a folder")
    missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
    if missing:
        raise ConfigurationError(
            f"{root} ({origin}) is not a DreamTalk checkout: it lacks {', '.join(missing)}. "
            "Clone https://github.com/ali-vilab/dreamtalk and pass its folder as checkout=... "
            f"(or set {ENV_HOME})"
        )
    return Checkout(root.resolve())


def locate_checkout(checkout: str | os.PathLike[str] | None) -> Checkout:
    """The checkout: ``checkout``, else ``$DREAMTALK_HOME``, else DreamTalk's folders installed on
    ``sys.path`` (a packaged copy). Raises :class:`ConfigurationError` naming what is missing."""
    if checkout is not None:
        return _check_layout(Path(checkout).expanduser(), "checkout=")
    env = os.environ.get(ENV_HOME)
    if env:
        return _check_layout(Path(env).expanduser(), f"${ENV_HOME}")
    for entry in sys.path:
        root = Path(entry or ".")
        if all((root / f).is_file() for f in REQUIRED_FILES):
            return Checkout(root.resolve())
    raise ConfigurationError(
        "the dreamtalk avatar needs a DreamTalk checkout: clone "
        "https://github.com/ali-vilab/dreamtalk and pass checkout='path/to/dreamtalk' "
        f"(or set {ENV_HOME})"
    )


_lock = threading.Lock()
_imported: dict[Path, CheckoutModules] = {}


def _placeholder_dlib() -> types.ModuleType:
    module = types.ModuleType("dlib")
    module.__doc__ = "lexperience's placeholder for dlib while importing DreamTalk (not dlib)"

    def __getattr__(name: str) -> Any:
        raise ImportError(
            f"dlib.{name} is not available: dlib is not installed (lexperience crops portraits "
            "with OpenCV; pip install dlib for face_detector='dlib')"
        )

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def _package(name: str, folder: Path) -> types.ModuleType:
    """The checkout's top-level package ``name``, bound to ``folder`` only."""
    init = folder / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(folder)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]
    module.__file__ = None
    sys.modules[name] = module
    return module


def _ours(name: str) -> bool:
    return name in _PACKAGES or name.startswith(tuple(p + "." for p in _PACKAGES))


def import_checkout(checkout: Checkout) -> CheckoutModules:
    """Import the classes lexperience needs from ``checkout`` (once per checkout folder).

    Raises:
        ConfigurationError: the checkout's code does not import (its error is in the message) or
            lacks one of DreamTalk's classes (another project, or a different version).
    """
    root = checkout.root
    with _lock:
        cached = _imported.get(root)
        if cached is not None:
            return cached
        saved = {k: v for k, v in sys.modules.items() if _ours(k) or k == "dlib"}
        for name in saved:
            if name != "dlib":
                del sys.modules[name]
        placeholder = not is_installed("dlib")
        if placeholder:
            sys.modules["dlib"] = _placeholder_dlib()
        try:
            for name in _PACKAGES:
                _package(name, root / name)
            modules = {name: importlib.import_module(name) for name in _MODULES}
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"the DreamTalk checkout {root} needs the Python package {exc.name!r}, which is "
                'not installed (pip install "lexperience[dreamtalk]" installs what DreamTalk '
                f"needs): {exc}"
            ) from exc
        except Exception as exc:
            raise ConfigurationError(
                f"importing the DreamTalk checkout {root} failed: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            for name in [k for k in sys.modules if _ours(k)]:
                del sys.modules[name]
            if placeholder:
                sys.modules.pop("dlib", None)
            sys.modules.update(saved)
        found = _classes(root, modules)
        _imported[root] = found
        log.info("dreamtalk: imported the checkout %s", root)
        return found


def _classes(root: Path, modules: dict[str, types.ModuleType]) -> CheckoutModules:
    wanted = {
        "DiffusionNet": "core.networks.diffusion_net",
        "NoisePredictor": "core.networks.diffusion_util",
        "VarianceSchedule": "core.networks.diffusion_util",
        "FaceGenerator": "generators.face_model",
        "get_cfg_defaults": "configs.default",
    }
    missing = [f"{m}.{n}" for n, m in wanted.items() if not hasattr(modules[m], n)]
    if missing:
        raise ConfigurationError(
            f"{root} does not look like DreamTalk: {', '.join(missing)} not found (a different "
            "project or version; lexperience drives github.com/ali-vilab/dreamtalk)"
        )
    for name, module in modules.items():
        file = getattr(module, "__file__", None)
        if file is None or root not in Path(file).resolve().parents:
            raise ConfigurationError(f"{name} was not imported from the checkout {root}")
    return CheckoutModules(root, **{n: getattr(modules[m], n) for n, m in wanted.items()})
