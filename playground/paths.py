"""Where the playground's files live: the shipped presets, the per-user state, the autosave.

Torch-free and textual-free, so the first frame, the CLI's ``presets`` and the training
engine all find the same files from one definition.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

NO_AUTOSAVE_ENV = "PLAYGROUND_NO_AUTOSAVE"  # set (non-empty) to turn the autosave off
EXPRESSIONS_FILE = "expressions.toml"  # the autograd explorer's exercises, not a training preset


def presets_dir() -> Path:
    """The shipped presets: inside the installed package, else the repository's presets/."""
    try:
        packaged = importlib.resources.files("playground") / "presets"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[1] / "presets"


def state_dir() -> Path:
    """Per-user state directory (XDG_STATE_HOME / the platform's equivalent)."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("playground", appauthor=False))


def theme_path() -> Path:
    """Where the TUI remembers the theme chosen in the command palette."""
    return state_dir() / "theme.json"


def autosave_path() -> Path:
    """Where quitting the TUI saves the session."""
    return state_dir() / "autosave.npz"


def default_autosave() -> Path | None:
    """The autosave file, or None when ``PLAYGROUND_NO_AUTOSAVE`` is set."""
    return None if os.environ.get(NO_AUTOSAVE_ENV) else autosave_path()
