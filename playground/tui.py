"""The one factory that builds the TUI, for the CLI, the tests and the benchmarks.

It wires the Textual app (``playground.ui``, which never imports torch) to the threads that
own the tensors: the training runner and the autograd explorer's worker. Neither thread
imports torch until it starts, so building the app costs no torch import either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground.ui.app import PlaygroundApp


def make_app(
    preset: str | None = None, device: str = "auto", seed: int | None = None, **options: Any
) -> PlaygroundApp:
    """The app.

    ``preset`` is a preset name or .toml path (None opens the picker); ``device`` is
    auto/cpu/cuda/mps; ``seed`` overrides the preset's seed. ``options`` go to
    ``PlaygroundApp`` (overrides, resume, fps, export_dir, autosave).
    """
    from playground.explorer.worker import ExplorerWorker
    from playground.runner import Runner
    from playground.ui.app import PlaygroundApp

    return PlaygroundApp(
        preset,
        device=device,
        seed=seed,
        runner_factory=Runner,
        explorer_factory=ExplorerWorker,
        **options,
    )
