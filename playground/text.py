"""Text that a preset, a session file or a sidecar supplies, made safe for a terminal.

A title, a description, an undo label or a status message from a file reaches the
screen (``playground run``, ``playground presets``, the TUI's header, status bar and
resume offer). An escape sequence in it would be run by the terminal (change its title,
clear the screen), so every such text passes through ``clean`` once, where it is read:
control characters, escape sequences' introducers (ESC, CSI), bidirectional overrides
and other invisible format characters all become spaces. ``shown`` is the same for a
value quoted in an error message (short, so an error never echoes a file's contents).

Torch-free and textual-free: the bottom layer, importable from everywhere.
"""

from __future__ import annotations

from typing import Any

MAX_LINE = 500  # a title, a label, a message
MAX_TEXT = 4000  # a description


def clean(text: Any, *, lines: bool = False, limit: int | None = None) -> str:
    """``text`` with nothing a terminal would act on: printable characters only (a
    newline kept where ``lines``), at most ``limit`` characters (MAX_TEXT with lines,
    MAX_LINE without). Not a string: its ``str``."""
    if not isinstance(text, str):
        text = str(text)
    limit = limit if limit is not None else (MAX_TEXT if lines else MAX_LINE)
    text = text[: limit * 2]  # nothing beyond the limit needs looking at
    if lines:
        text = text.replace("\r\n", "\n")
    kept = "".join(ch if ch.isprintable() or (lines and ch == "\n") else " " for ch in text)
    if len(kept) > limit:
        kept = kept[: limit - 3] + "..."
    return kept


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` for an error message: clipped to ``limit`` characters and clean."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return clean(text, limit=limit)
