"""What ``playground run`` shares with its ``--ranks`` path: the command line's settings
checked as a run takes them (each valid, used by the optimizer it is given for and
fitting the preset's data), and the final table's parameter cells."""

from __future__ import annotations

from typing import Any


def option_of(field: str) -> str:
    """The command-line option of a preset field ("train.loss" -> "--loss")."""
    from playground.training.config import SETTINGS

    section, _, key = field.partition(".")
    for s in SETTINGS.values():
        if (s.section, s.key) == (section, key) and s.label:
            return s.option
    return field


def refuse_unused(optimizer: str, overrides: dict[str, Any]) -> None:
    """An option the optimizer does not use is refused, not silently ignored."""
    from playground.training.config import SETTINGS, unused_settings

    unused = unused_settings(optimizer, list(overrides))
    if unused:
        hint = " (gd is p -= lr * p.grad by hand: --optimizer sgd has momentum)"
        raise ValueError(
            f"{SETTINGS[unused[0]].option}: the {optimizer} optimizer does not use it"
            + (hint if optimizer == "gd" else "")
        )


def checked_config(preset: Any, overrides: dict[str, Any]) -> Any:
    """The preset's settings with the command line's: each valid, used by the optimizer
    and fitting the preset's data (ValueError naming the option otherwise)."""
    from playground.training.catalog import PresetError
    from playground.training.config import SETTINGS
    from playground.training.presets import check_fit

    try:
        cfg = preset.config.with_overrides(**overrides)
    except ValueError as exc:  # "hidden: ..." -> "--hidden: ..."
        name, _, reason = str(exc).partition(": ")
        raise ValueError(f"{SETTINGS[name].option}: {reason}" if name in SETTINGS else exc) from exc
    refuse_unused(cfg.optimizer, overrides)
    if overrides:
        try:
            check_fit(preset, cfg)
        except PresetError as exc:
            option = option_of(exc.field)
            where = f" ({exc.field})" if option != exc.field else ""
            raise ValueError(f"{option}{where}: {exc.reason}") from exc
    return cfg


def short_values(v: Any) -> str:
    """A parameter's values for the final table: up to 4 numbers, else size and norm."""
    import numpy as np

    if v is None:
        return "-"
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.size > 4:
        return f"[{a.size} values, |.| {np.linalg.norm(a):.4g}]"
    return "[" + ", ".join(f"{x:.6g}" for x in a) + "]"
