"""File helpers: atomic writes (write beside the target, then rename, so a crash never leaves a half-written
file) and JSON reads whose errors name the file."""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from core.errors import InputError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; it replaces the target only if the block succeeds.
    The temporary name keeps the target's suffix, for writers that choose the format by extension."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; a written file should look like any other
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object from ``path``, or an `InputError` naming the file and what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(path, "expected a JSON object")
    return data


def safe_filename(text: str, fallback: str = "unnamed") -> str:
    """``text`` made safe as one file name: anything but letters, digits, '.', '-', '_' and '+' becomes '_', and
    leading dots go, so that names from data ("../../x", "a/b", "") never leave or hide in the chosen folder."""
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", str(text)).lstrip(".")[:120]
    return name or fallback
