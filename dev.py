#!/usr/bin/env python3
"""Bootstrap and run the bridge, or its tests, from a clean clone.

    python3 dev.py serve [serve options]   install into .venv, then start the service
    python3 dev.py listen [listen options] install, then run the bot receiver that prints
                                           the signed events the bridge sends (port 9000)
    python3 dev.py test  [pytest options]  install (with test extras), then run every test

Only the standard library is used here, because this script is what runs before
anything is installed. Installation is skipped when pyproject.toml has not
changed since the last one, so the second run starts at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def _ensure_installed(extras: str) -> None:
    """Create .venv and install the project (editable) with the given extras, once per change."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on any python3
        sys.exit("handoff bridge needs Python 3.11 or newer")
    if not PYTHON.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extras}]" if extras else "."
    print(f"dev.py: installing {target} into .venv", flush=True)
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            target,
        ],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    """Dispatch `serve`, `listen` or `test`."""
    if not argv or argv[0] not in {"serve", "listen", "test"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command in {"serve", "listen"}:
        _ensure_installed("")
        args = [str(PYTHON), "-m", "bridge", command, *rest]
    else:
        _ensure_installed("test")
        args = [str(PYTHON), "-m", "pytest", *rest]
    return subprocess.call(args, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
