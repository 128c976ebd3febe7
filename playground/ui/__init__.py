"""Textual user interface: app, screens and widgets (never imports torch directly)."""
