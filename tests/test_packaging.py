"""What a colleague installs: the wheel carries the resources and finds them wherever it is installed, and the
desktop entry names the installed command and a shipped icon."""
import configparser
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return next(out.glob("heatformer_studio-*.whl"))


def test_wheel_ships_the_resources_but_not_the_screenshots(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("heatformer_resources/body_model/free_body_model.npz",
                    "heatformer_resources/checkpoints/heatformer_compact.pt",
                    "heatformer_resources/sample/sample.json", "heatformer_resources/icons/heatformer-studio.svg",
                    "heatformer_resources/heatformer-studio.desktop", "core/resources.py", "app/main_window.py",
                    "main.py"):
        assert shipped in names
    assert not any(n.startswith("heatformer_resources/screenshots/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "heatformer-studio = main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_code_finds_its_resources_from_any_folder(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    # -S: no site-packages, so only the installed copy (not this checkout) can be imported; core.resources needs
    # nothing else. Run from an unrelated folder.
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from core import resources as r; "
             "print(r.RESOURCES); assert all(p.exists() for p in (r.FREE_BODY_MODEL, r.DEFAULT_CHECKPOINT, "
             "r.SAMPLE_SCENE, r.APP_ICON, r.DESKTOP_ENTRY))")
    result = subprocess.run([sys.executable, "-S", "-c", probe, str(target)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target / "heatformer_resources")


def test_desktop_entry_runs_the_installed_command_with_a_shipped_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(ROOT / "resources" / "heatformer-studio.desktop")
    desktop = entry["Desktop Entry"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert desktop["Type"] == "Application" and desktop["Exec"].split()[0] in scripts
    assert (ROOT / "resources" / "icons" / f"{desktop['Icon']}.svg").exists()
    assert desktop["Categories"].endswith(";") and desktop["Terminal"] == "false"


def test_version_option():
    from core import __version__

    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"heatformer-studio {__version__}"
