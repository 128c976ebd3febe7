"""The preset files on disk: listing them and reading their headers, without torch.

``preset_infos`` reads only names, titles and descriptions, so the TUI can show the picker
(and ``playground presets`` can print the list) before torch has loaded. Every problem is
a ``PresetError`` naming the file, the field and the reason, so one broken file never
stops the others from loading.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.paths import EXPRESSIONS_FILE, presets_dir


class PresetError(ValueError):
    """A preset that cannot be used: which file, which field, and why."""

    def __init__(self, file: str, field: str, reason: str) -> None:
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
    try:
        text = path.read_text(encoding="utf-8")
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
    return doc


def _str_field(doc: dict[str, Any], key: str, file: str, default: str | None = None) -> str:
    value = doc.get(key, default)
    if value is None:
        raise PresetError(file, key, "is missing")
    if not isinstance(value, str):
        raise PresetError(file, key, f"must be a string, got {type(value).__name__}")
    return value


def preset_info(path: Path) -> PresetInfo:
    """Name, title and description of a preset file (no validation of the rest)."""
    doc = read_toml(path)
    file = path.name
    return PresetInfo(
        name=_str_field(doc, "name", file, path.stem),
        title=_str_field(doc, "title", file, path.stem),
        description=_str_field(doc, "description", file, ""),
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
