"""Atomic writes: one file or a set of files appears whole or not at all, even when the writer is killed, and
what a killed writer left is cleaned up by the next write."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.files import atomic_folder, atomic_path

ROOT = Path(__file__).resolve().parent.parent
DEAD_PID = 2 ** 22 + 12345  # above Linux's default pid_max: no such process


def kill_while_writing(writer: str, write: str, target: Path) -> None:
    """Run ``write`` inside core.files.``writer``(target) in another process, and kill -9 it mid-write."""
    process = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from pathlib import Path\n"
        f"from core.files import {writer}\n"
        f"with {writer}(Path(sys.argv[2])) as into:\n"
        f"    {write}; print('written', flush=True); time.sleep(60)\n"),
        str(ROOT), str(target)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "written"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_a_set_of_files_appears_together_in_a_new_or_existing_folder(tmp_path):
    fresh = tmp_path / "fresh"
    with atomic_folder(fresh) as staging:
        (staging / "a.obj").write_text("a")
        (staging / "frame1").mkdir()
        (staging / "frame1" / "b.obj").write_text("b")
        assert not fresh.exists()  # nothing in place until the block ends
    assert (fresh / "a.obj").read_text() == "a" and (fresh / "frame1" / "b.obj").read_text() == "b"
    with atomic_folder(fresh) as staging:  # into an existing folder: merged, older files kept
        (staging / "frame1").mkdir()
        (staging / "frame1" / "c.obj").write_text("c")
    assert sorted(p.name for p in fresh.rglob("*.obj")) == ["a.obj", "b.obj", "c.obj"]
    assert [p.name for p in tmp_path.iterdir()] == ["fresh"]  # no staging folder left


def test_a_failed_set_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as staging:
            (staging / "a.obj").write_text("a")
            raise RuntimeError("cancelled")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_export_leaves_no_file_at_the_target_and_its_leftovers_are_removed(tmp_path):
    target = tmp_path / "out"
    kill_while_writing("atomic_folder", "(into / 'a.obj').write_text('a')", target)
    assert not target.exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial")]
    assert len(leftovers) == 1 and (leftovers[0] / "a.obj").exists()
    with atomic_folder(target) as staging:
        (staging / "b.obj").write_text("b")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in target.iterdir()] == ["b.obj"]


def test_a_killed_single_write_is_cleaned_up_by_the_next(tmp_path):
    stale = tmp_path / f".trace.partial{DEAD_PID}.abc123.npz"
    stale.write_text("half")
    live = tmp_path / f".trace.partial{os.getpid()}.def456.npz"  # a write in progress in a running process
    live.write_text("busy")
    with atomic_path(tmp_path / "trace.npz") as tmp:
        tmp.write_text("whole")
    assert (tmp_path / "trace.npz").read_text() == "whole"
    assert not stale.exists() and live.exists()


def test_a_killed_single_write_leaves_the_old_file(tmp_path):
    """kill -9 while a trace, video or export file is being written: the target keeps its old content."""
    target = tmp_path / "trace.npz"
    target.write_text("old")
    kill_while_writing("atomic_path", "into.write_text('half')", target)
    assert target.read_text() == "old"
