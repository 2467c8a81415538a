"""Where the shipped assets live, found relative to the installed package (never the current directory)."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESOURCES = PROJECT_ROOT / "resources"
FREE_BODY_MODEL = RESOURCES / "body_model" / "free_body_model.npz"
SAMPLE_SCENE = RESOURCES / "sample"
DEFAULT_CHECKPOINT = RESOURCES / "checkpoints" / "heatformer_compact.pt"

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
