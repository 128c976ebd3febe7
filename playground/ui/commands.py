"""The command palette's playground commands (ctrl+p), and the theme it remembers.

Textual's palette offers its own few commands (theme picker, keys, quit, screenshot); this
provider adds the playground's: every key of the screen the palette was opened on and of
the app (forward, backward, zero_grad, step, train step, run/pause, undo, redo, reset,
export, save, open, help, the autograd explorer, the panels ...), each preset, and each
theme. The key commands come from the ``BINDINGS`` themselves, so a new key shows up here
(and in the help screen) with no second list to keep.

The chosen theme is written to a small JSON file in the state directory and applied at the
next start (``restore_theme`` / ``remember_theme``, called by the app).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from playground.files import read_json, write_atomic
from playground.protocol import Load
from playground.training.catalog import preset_infos

SKIPPED_ACTIONS = ("app.quit", "app.command_palette")  # Textual's own commands have them


@dataclass(frozen=True)
class PaletteCommand:
    """One line of the palette: what it says, the help under it, what it does."""

    title: str
    help: str
    run: Callable[[], Any]


def key_commands(app: App[Any], screen: DOMNode) -> list[PaletteCommand]:
    """The keys of ``screen`` and of the app, as the help screen lists them."""
    commands: list[PaletteCommand] = []
    seen: set[str] = set()  # actions by their full name: the screen's "app.help" is "help"
    for node, namespace in ((screen, "screen"), (app, "app")):
        for binding in node.BINDINGS:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            action = binding.action
            full = action if action.startswith(("app.", "screen.")) else f"{namespace}.{action}"
            if full in SKIPPED_ACTIONS or full in seen:
                continue
            seen.add(full)
            commands.append(
                PaletteCommand(
                    binding.description,
                    f"key {app.get_key_display(binding)}",
                    partial(node.run_action, binding.action),
                )
            )
    return commands


def _load_preset(app: Any, name: str) -> None:
    # as the preset picker does (`p`): the new session replaces the current one
    app.preset = name
    app.submit(Load(name))


def preset_commands(app: App[Any]) -> list[PaletteCommand]:
    infos, _ = preset_infos()
    if not hasattr(app, "submit"):  # an app without the training runner
        return []
    return [
        PaletteCommand(
            f"load preset: {info.name}", info.title, partial(_load_preset, app, info.name)
        )
        for info in sorted(infos, key=lambda i: i.name)
    ]


def _set_theme(app: App[Any], name: str) -> None:
    app.theme = name


def theme_commands(app: App[Any]) -> list[PaletteCommand]:
    remembered = getattr(app, "theme_file", None) is not None
    help_text = "remembered for the next start" if remembered else "for this session"
    return [
        PaletteCommand(
            f"theme: {name}",
            help_text + (" (the current one)" if name == app.theme else ""),
            partial(_set_theme, app, name),
        )
        for name in sorted(app.available_themes)
    ]


def palette_commands(app: App[Any], screen: DOMNode) -> list[PaletteCommand]:
    """Everything the palette offers on ``screen``, in the order it lists them."""
    return [*key_commands(app, screen), *preset_commands(app), *theme_commands(app)]


class PlaygroundCommands(Provider):
    """The provider registered in ``PlaygroundApp.COMMANDS``."""

    async def startup(self) -> None:
        self._commands = palette_commands(self.app, self.screen)

    async def discover(self) -> Hits:
        for command in self._commands:
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands:
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.title),
                    command.run,
                    text=command.title,
                    help=command.help,
                )


# --- the theme, remembered between starts ---------------------------------------------


def read_theme(path: Path | None) -> str | None:
    """The remembered theme's name, or None (no file, or one not written by us)."""
    if path is None:
        return None
    try:  # a regular file, small: never a FIFO that would hold the start
        doc = read_json(path, 4096, "theme file")
    except (OSError, ValueError):
        return None
    name = doc.get("theme") if isinstance(doc, dict) else None
    return name if isinstance(name, str) else None


def remember_theme(path: Path | None, name: str) -> None:
    """Write ``{"theme": name}`` atomically; a state directory that cannot be written
    only means the theme is not remembered."""
    if path is None or read_theme(path) == name:
        return
    try:
        write_atomic(path, json.dumps({"theme": name}))
    except OSError:
        pass


def restore_theme(app: App[Any], path: Path | None) -> None:
    """Apply the remembered theme if it is still one the app has."""
    name = read_theme(path)
    if name is not None and name in app.available_themes:
        app.theme = name
