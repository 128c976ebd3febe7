"""The scalar exercises of presets/expressions.toml: load, validate, look up by name.

Each preset is checked the way ``GradExplorer`` checks its input (``plan_graph``), so a bad
entry fails at load time with the file, the preset and the field in the message. Listing
the presets loads no torch.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from playground.explorer.plan import plan_graph
from playground.explorer.tree import ExpressionError
from playground.explorer.values import InputValues, format_values
from playground.paths import EXPRESSIONS_FILE, presets_dir


class ExpressionPresetError(ValueError):
    """A malformed entry in presets/expressions.toml; the message names file, preset, field."""


@dataclass(frozen=True)
class ExpressionPreset:
    """A scalar exercise: an expression and the point to evaluate it at."""

    name: str
    title: str
    description: str
    expression: str
    values: InputValues

    @property
    def values_text(self) -> str:
        return format_values(self.values)


def load_expression_presets(path: Path | None = None) -> tuple[ExpressionPreset, ...]:
    """Read and validate every ``[[preset]]`` of expressions.toml (each must parse)."""
    path = path or presets_dir() / EXPRESSIONS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExpressionPresetError(f"{path}: {exc}") from None
    entries = data.get("preset")
    if not isinstance(entries, list) or not entries:
        raise ExpressionPresetError(f"{path}: expected [[preset]] tables")
    presets: list[ExpressionPreset] = []
    for i, entry in enumerate(entries):
        where = f"{path}: preset #{i + 1} ({entry.get('name', '?')})"
        fields = {}
        for key in ("name", "title", "description", "expression"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ExpressionPresetError(f"{where}: field '{key}' must be a non-empty string")
            fields[key] = entry[key]
        raw = entry.get("values")
        if not isinstance(raw, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw.values()
        ):
            raise ExpressionPresetError(f"{where}: field 'values' must be a table of numbers")
        requires = entry.get("requires_grad")
        if requires is not None and not (
            isinstance(requires, list) and all(isinstance(n, str) for n in requires)
        ):
            raise ExpressionPresetError(f"{where}: field 'requires_grad' must be a list of names")
        values = InputValues(
            tuple((k, float(v)) for k, v in raw.items()),
            None if requires is None else tuple(requires),
        )
        try:
            plan_graph(fields["expression"], values)  # what GradExplorer would refuse
        except ExpressionError as exc:
            raise ExpressionPresetError(f"{where}: field 'expression': {exc}") from None
        if any(p.name == fields["name"] for p in presets):
            raise ExpressionPresetError(f"{where}: duplicate name")
        presets.append(ExpressionPreset(values=values, **fields))
    return tuple(presets)


def find_expression_preset(name: str, path: Path | None = None) -> ExpressionPreset:
    """The preset called ``name``; the error lists the known names."""
    presets = load_expression_presets(path)
    for preset in presets:
        if preset.name == name:
            return preset
    known = ", ".join(p.name for p in presets)
    raise ExpressionPresetError(f"no expression preset named {name!r}; known: {known}")
