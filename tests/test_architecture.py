"""core/ computes and must run without a GUI stack: no Qt, VTK or plotting imports anywhere in it."""
import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"
FORBIDDEN = ("PyQt6", "PyQt5", "PySide6", "pyvista", "pyvistaqt", "pyqtgraph", "vtk", "app")


def test_core_imports_no_gui_modules():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders
