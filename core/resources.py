"""Where the shipped assets live, found relative to the code (never the current directory): resources/ beside
core/ in a checkout or an editable install, else the installed package heatformer_resources (`pip install .`,
and the desktop bundle, which keeps the same layout)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _resources_root() -> Path:
    checkout = PROJECT_ROOT / "resources"
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec("heatformer_resources")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("HeatFormer Studio's resources are missing: reinstall the package")
    return Path(next(iter(spec.submodule_search_locations)))


RESOURCES = _resources_root()
FREE_BODY_MODEL = RESOURCES / "body_model" / "free_body_model.npz"
SAMPLE_SCENE = RESOURCES / "sample"
DEFAULT_CHECKPOINT = RESOURCES / "checkpoints" / "heatformer_compact.pt"
APP_ICON = RESOURCES / "icons" / "heatformer-studio.svg"
DESKTOP_ENTRY = RESOURCES / "heatformer-studio.desktop"
LICENCE_NOTICE = RESOURCES / "body_model" / "NOTICE.md"
DETECTOR_DIR = RESOURCES / "detector"  # the built-in BlazePose detector, baked by packaging/bake_pose_detector.py

BODY_MODEL_ENV = "HEATFORMER_BODY_MODEL"


def resolve_body_model_path(explicit: str | os.PathLike | None = None,
                            setting: str | os.PathLike | None = None) -> Path | None:
    """The user's SMPL file if one is chosen — command-line argument first, then $HEATFORMER_BODY_MODEL, then
    the app's saved setting — else None for the bundled free model."""
    chosen = explicit or os.environ.get(BODY_MODEL_ENV) or setting or None
    return Path(chosen).expanduser() if chosen else None


def resolve_checkpoint_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """The checkpoint to use: the one given, else the shipped compact checkpoint if present, else None (random
    weights, which every view then labels as untrained)."""
    if explicit:
        return Path(explicit).expanduser()
    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.exists() else None
