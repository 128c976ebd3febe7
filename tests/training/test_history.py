"""The loss history's columns: step counts kept in 32 bits until one needs 64, exactly."""

from __future__ import annotations

import numpy as np
import torch

from playground.training.history import Recorder


def test_steps_past_two_to_the_31_widen_the_column_and_keep_every_value() -> None:
    rec = Recorder(torch.device("cpu"), np.int32)
    rec.extend(np.ones(3, np.float32), np.array([1, 2, 3]), np.array([0, 0, 0]))
    before = rec.views()
    assert before[1].dtype == np.int32  # half of int64's memory for a normal session
    big = 2**31 + 7
    rec.extend(np.ones(2, np.float32), np.array([big, big + 1]), np.array([2**40, 5]))
    rec.record(torch.tensor(0.5), big + 2, 9)
    loss, step, tag = rec.views()
    assert step.tolist() == [1, 2, 3, big, big + 1, big + 2]
    assert tag.tolist() == [0, 0, 0, 2**40, 5, 9]
    assert step.dtype == np.int64
    assert before[1].tolist() == [1, 2, 3] and before[1].dtype == np.int32  # handed out: kept


def test_a_history_truncated_and_extended_again_keeps_its_narrow_columns() -> None:
    rec = Recorder(torch.device("cpu"), np.int8)
    for i in range(600):  # past the first capacity: the column grows
        rec.record(torch.tensor(float(i)), i, 1)
    rec.truncate(10)
    rec.record(torch.tensor(1.0), 10, 2)
    loss, step, tag = rec.views()
    assert step.tolist() == list(range(11)) and tag.dtype == np.int8
    assert tag.tolist() == [1] * 10 + [2]
    assert loss.tolist() == [float(i) for i in range(10)] + [1.0]
