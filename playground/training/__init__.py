"""The UI-free engine: presets, data, models, the training session and its snapshots.

Imports torch and numpy only; never textual. Everything is testable without a terminal.
"""
