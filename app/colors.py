"""Colours shared by every view, so a camera's panel border, frustum and mesh match."""
from __future__ import annotations

VIEW_COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]
TRUTH_COLOR = "#b0b0b0"
TRUTH_JOINT_COLOR = "#ffd400"
FUSED_COLOR = "#f0f0f0"


def view_color(index: int) -> str:
    return VIEW_COLORS[index % len(VIEW_COLORS)]
