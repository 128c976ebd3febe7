"""The preset files on disk: listing them and reading their headers, without torch.

``preset_infos`` reads only names, titles and descriptions, so the TUI can show the picker
(and ``playground presets`` can print the list) before torch has loaded. Every problem is
a ``PresetError`` naming the file, the field and the reason, so one broken file never
stops the others from loading. Every text a preset supplies (name, title, description)
is made safe for a terminal here, where it is read (``playground.text.clean``), and so is
every error message.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.files import FileError, read_limited
from playground.paths import EXPRESSIONS_FILE, presets_dir
from playground.text import clean

MAX_TOML_BYTES = 4 * 2**20  # a preset with its inline data; a larger file is not read


class PresetError(ValueError):
    """A preset that cannot be used: which file, which field, and why."""

    def __init__(self, file: str, field: str, reason: str) -> None:
        file, field, reason = clean(file), clean(field), clean(reason, lines=True, limit=600)
        super().__init__(f"{file}: {field}: {reason}")
        self.file = file
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class PresetInfo:
    """What the picker shows; read without importing torch."""

    name: str
    title: str
    description: str
    source: str
    path: Path


def preset_paths(directory: Path | None = None) -> list[Path]:
    d = directory or presets_dir()
    # expressions.toml holds the autograd explorer's scalar exercises, not training presets
    return sorted(p for p in d.glob("*.toml") if p.name != EXPRESSIONS_FILE)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file (a regular file of at most MAX_TOML_BYTES), parsed; errors never
    quote its contents."""
    try:
        text = read_limited(path, MAX_TOML_BYTES, "preset file").decode("utf-8")
    except FileError as exc:
        raise PresetError(path.name, "(file)", exc.reason) from exc
    except OSError as exc:
        raise PresetError(path.name, "(file)", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PresetError(path.name, "(file)", f"not UTF-8 text: {exc.reason}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(path.name, "(toml)", str(exc)) from exc
    except RecursionError as exc:
        raise PresetError(path.name, "(toml)", "nested too deeply") from exc
    return _cleaned(doc)


def _cleaned(doc: dict[str, Any]) -> dict[str, Any]:
    """Every text in the document safe for a terminal (lessons, claims and whatever a
    preset shows), once, here; newlines kept. Without recursion: TOML nests deeply."""
    todo: list[Any] = [doc]
    while todo:
        node = todo.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if isinstance(value, str):
                node[key] = clean(value, lines=True, limit=len(value) + 3)
            elif isinstance(value, (dict, list)):
                todo.append(value)
    return doc


def _str_field(
    doc: dict[str, Any], key: str, file: str, default: str | None = None, lines: bool = False
) -> str:
    """A text field, safe for a terminal (``clean``: no control characters)."""
    value = doc.get(key, default)
    if value is None:
        raise PresetError(file, key, "is missing")
    if not isinstance(value, str):
        raise PresetError(file, key, f"must be a string, got {type(value).__name__}")
    return clean(value, lines=lines)


def preset_info(path: Path) -> PresetInfo:
    """Name, title and description of a preset file (no validation of the rest)."""
    doc = read_toml(path)
    file = path.name
    return PresetInfo(
        name=_str_field(doc, "name", file, path.stem),
        title=_str_field(doc, "title", file, path.stem),
        description=_str_field(doc, "description", file, "", lines=True),
        source=_str_field(doc, "source", file, ""),
        path=path,
    )


def preset_infos(directory: Path | None = None) -> tuple[list[PresetInfo], list[PresetError]]:
    """All presets' headers, plus the errors of the files that could not be read."""
    infos: list[PresetInfo] = []
    errors: list[PresetError] = []
    for path in preset_paths(directory):
        try:
            infos.append(preset_info(path))
        except PresetError as exc:
            errors.append(exc)
    return infos, errors
