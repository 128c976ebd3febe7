"""What the screen calls things: the runner's states and failed commands in a user's words.

The runner owns ``protocol.Status`` and names a failed command by its class (``Failed.command
== "Act"``); neither is meant to be read by a student. Here they become words: "reached
max steps", "backward failed", "loading the preset failed".
"""

from __future__ import annotations

from playground.protocol import ACTION_KEYS

STATUS_WORDS = {
    "idle": "idle",
    "running": "running",
    "paused": "paused",
    "converged": "converged",
    "diverged": "diverged",
    "max_steps": "reached max steps",
}

# what the user did, by the command class the runner names
COMMAND_WORDS = {
    "Load": "loading the preset",
    "Open": "opening the session file",
    "Configure": "the new setting",
    "Run": "the run",
    "Pause": "pausing",
    "Export": "the export",
    "Save": "saving",
    "Recover": "moving to the CPU",
    "Snapshot": "reading the training state",
    "Call": "the call",
}
ACTION_WORDS = {name: label for name, label in ACTION_KEYS.values()}


def status_word(status: object) -> str:
    """The runner's state as the status bar spells it ("reached max steps")."""
    state = str(status)
    return STATUS_WORDS.get(state, state.replace("_", " "))


def failure_title(command: str, action: str | None = None) -> str:
    """The title of a failure: "backward failed" for a failed ``Act`` (``action``: the
    last one sent), "loading the preset failed" for a ``Load``; a command without words
    keeps its name."""
    if command == "Act":
        what = ACTION_WORDS.get(action or "", "the action")
    else:
        what = COMMAND_WORDS.get(command, command)
    return f"{what} failed"
