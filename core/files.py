"""File helpers: atomic writes (write beside the target, then rename, so a crash never leaves a half-written
file) and JSON reads whose errors name the file."""
from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from core.errors import InputError


def _partial_prefix(name: str) -> str:
    return f".{name}.partial"


def remove_stale(folder: Path, name: str) -> None:
    """Remove what killed writes of ``name`` left in ``folder``: hidden partial files and folders whose writing
    process (its id is in their names) no longer runs."""
    prefix = _partial_prefix(name)
    for leftover in folder.glob(f"{glob.escape(prefix)}*"):
        pid = leftover.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; it replaces the target only if the block succeeds.
    The temporary name keeps the target's suffix, for writers that choose the format by extension; what an
    earlier, killed write of the same target left is removed first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent, target.stem)
    fd, tmp = tempfile.mkstemp(prefix=f"{_partial_prefix(target.stem)}{os.getpid()}.", suffix=target.suffix,
                               dir=target.parent)
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


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden staging folder beside ``target`` for a set of files; only when the block succeeds do they
    go into ``target``: the staging folder is renamed into place, or, where ``target`` exists, its contents are
    moved in (renames, so the files appear together). A failed or cancelled block leaves nothing, a killed one
    only the staging folder, which the next export to ``target`` removes."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent, target.name)
    staging = Path(tempfile.mkdtemp(prefix=f"{_partial_prefix(target.name)}{os.getpid()}.", dir=target.parent))
    try:
        yield staging
        if target.exists():
            _merge(staging, target)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _merge(source: Path, destination: Path) -> None:
    for item in sorted(source.iterdir()):
        into = destination / item.name
        if item.is_dir() and into.is_dir():
            _merge(item, into)
        else:
            os.replace(item, into)


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object from ``path``, or an `InputError` naming the file and what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(path, f"cannot read JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise InputError(path, "expected a JSON object")
    return data


def safe_filename(text: str, fallback: str = "unnamed") -> str:
    """``text`` made safe as one file name: anything but letters, digits, '.', '-', '_' and '+' becomes '_', and
    leading dots go, so that names from data ("../../x", "a/b", "") never leave or hide in the chosen folder."""
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", str(text)).lstrip(".")[:120]
    return name or fallback


def check_version(source, version, current: int, what: str) -> None:
    """A file's format version: a whole number this app (at ``current``) can read, or an `InputError` naming
    ``source``."""
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(source, f"{what} version {version!r} is not a number")
    if version > current:
        raise InputError(source, f"{what} version {version} is newer than this app ({current})")
