"""Shared fixtures for the engine tests: the shipped presets and CPU sessions of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture(scope="session")
def presets() -> dict[str, Any]:
    """Every shipped preset by name (loaded once per test run)."""
    from playground.training.presets import load_presets

    loaded, errors = load_presets()
    assert not errors, errors
    return loaded


@pytest.fixture
def make_session(presets: dict[str, Any]) -> Callable[..., Any]:
    """``make_session("noisy-line", lr=0.1)``: a fresh session of a shipped preset on the CPU."""
    from playground.training.session import Session

    def make(name: str, **overrides: Any) -> Any:
        return Session(presets[name], device="cpu", **overrides)

    return make
