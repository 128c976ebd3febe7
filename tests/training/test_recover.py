"""Carrying on after the device is lost: a session rebuilt from its last snapshot (plain
numpy, already on the host) continues with the numbers the lost one would have made."""

from __future__ import annotations

import numpy as np
import pytest

from playground.training.presets import find_preset
from playground.training.recover import is_device_error, session_from_snapshot
from playground.training.session import Session


@pytest.mark.parametrize(
    "name, overrides",
    [("multiple-regression", {"momentum": 0.9}), ("tfp-xor", {}), ("softmax", {"accumulate": 2})],
)
def test_a_session_rebuilt_from_its_snapshot_goes_on_with_the_same_numbers(
    name: str, overrides: dict
) -> None:
    lost = Session(find_preset(name), device="cpu", **overrides)
    lost.run(7)
    lost.backward()
    snap = lost.snapshot()
    again = session_from_snapshot(lost.preset, lost.cfg, snap, "cpu")
    back = again.snapshot()
    assert (back.step, back.cursor, back.backward_total, back.epoch) == (
        snap.step,
        snap.cursor,
        snap.backward_total,
        snap.epoch,
    )
    np.testing.assert_array_equal(back.history.loss, snap.history.loss)
    assert back.log[:-1] == snap.log and "after a device failure" in back.log[-1]
    for s in (lost, again):
        s.zero_grad()
        s.run(5)
    for p, q in zip(lost.snapshot().params, again.snapshot().params, strict=True):
        np.testing.assert_array_equal(p.value, q.value, err_msg=p.name)
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=p.name)


def test_device_errors_are_told_apart_from_the_users_mistakes() -> None:
    assert is_device_error(RuntimeError("CUDA error: an illegal memory access"))
    assert is_device_error(RuntimeError("MPS backend out of memory"))
    assert not is_device_error(ValueError("lr: -1 must be a positive number"))
    assert not is_device_error(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
