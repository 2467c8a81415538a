"""Check that a screenshot of the window shows something (the smoke test of the desktop bundle):

    python packaging/check_screenshot.py SHOT.png      (exit 0 when it does, 1 with the reasons when not)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.capture import screenshot_problems  # noqa: E402

if __name__ == "__main__":
    found = screenshot_problems(sys.argv[1])
    print("\n".join(found) or f"{sys.argv[1]}: OK")
    sys.exit(1 if found else 0)
