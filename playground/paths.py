"""Where the playground's files live: the shipped presets, the per-user state, the autosaves.

Each running TUI has an autosave file of its own, locked while it runs
(``playground.files.lock``): the first of ``autosave.npz``, ``autosave-2.npz`` ... that no
running instance holds and that holds no session yet, so two instances quitting at the
same moment, or one after the other, never write over each other's session. Resuming an
autosave makes it the instance's own (``adopt_autosave``); the resume offer lists the
others (``sidecar.resume_list``). When every slot holds a session, the one saved longest
ago is reused.

Torch-free and textual-free, so the first frame, the CLI's ``presets`` and the training
engine all find the same files from one definition.
"""

from __future__ import annotations

import importlib.resources
import os
import secrets
from pathlib import Path

from playground.files import lock, unlock

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


AUTOSAVES = 20  # sessions kept in the state directory before the oldest is reused


def autosave_path(n: int = 1) -> Path:
    """Autosave slot ``n``: ``autosave.npz``, ``autosave-2.npz`` ..."""
    return state_dir() / ("autosave.npz" if n == 1 else f"autosave-{n}.npz")


def autosave_files(folder: Path | None = None) -> list[Path]:
    """The autosaves in ``folder`` (the state directory), in slot order."""
    folder = folder or state_dir()
    try:
        found = sorted(folder.glob("autosave*.npz"))
    except OSError:
        return []
    return sorted(found, key=lambda p: (len(p.name), p.name))


def claim_autosave(avoid: Path | None = None) -> Path:
    """An autosave file of this instance's own, locked: the first slot nobody holds
    that holds no session; else the one saved longest ago that nobody holds; else a
    new name. Never ``avoid``."""
    slots = [autosave_path(n) for n in range(1, AUTOSAVES + 1)]
    for path in slots:
        if path != avoid and not path.exists() and lock(path):
            if not path.exists():  # still empty once held
                return path
            unlock(path)

    def age(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    for path in sorted(slots, key=age):
        if path != avoid and lock(path):
            return path
    path = state_dir() / f"autosave-{os.getpid()}-{secrets.token_hex(3)}.npz"
    lock(path)
    return path


def adopt_autosave(current: Path | None, chosen: Path) -> Path:
    """Make ``chosen`` (a resumed autosave) this instance's own, giving ``current`` up;
    ``current`` stays when another instance took ``chosen`` meanwhile."""
    if chosen == current:
        return chosen
    if not lock(chosen):
        return current or chosen
    if current is not None:
        release_autosave(current)
    return chosen


def release_autosave(path: Path | None) -> None:
    """Give this instance's autosave file up (at exit)."""
    if path is not None:
        unlock(path)


def default_autosave() -> Path | None:
    """This instance's autosave file (claimed and locked), or None when
    ``PLAYGROUND_NO_AUTOSAVE`` is set."""
    return None if os.environ.get(NO_AUTOSAVE_ENV) else claim_autosave()
