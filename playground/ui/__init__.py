"""Textual user interface: app, screens and widgets (never imports torch directly)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground.ui.app import PlaygroundApp


def make_app(
    preset: str | None = None, device: str = "auto", seed: int | None = None, **options: Any
) -> PlaygroundApp:
    """The app, as the CLI and the tests build it.

    ``preset`` is a preset name or .toml path (None opens the picker); ``device`` is
    auto/cpu/cuda/mps; ``seed`` overrides the preset's seed. ``options`` go to
    ``PlaygroundApp`` (overrides, resume, fps, export_dir).
    """
    from playground.ui.app import PlaygroundApp

    return PlaygroundApp(preset, device=device, seed=seed, **options)
