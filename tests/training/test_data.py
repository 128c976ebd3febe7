"""Data sets: the course's generators reproduced draw for draw, the 2-D sets look like
their names, and inline / CSV data is validated with a clear field and reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from playground.training import data
from playground.training.data import DataError

DATA = Path(__file__).parent / "data"


def lab_create_dataset(sample_size=10, sigma=0.1, w_star=1, b_star=1, x_range=(-1, 1), seed=0):
    """create_dataset exactly as printed in the linear regression lab (seed 004)."""
    torch.manual_seed(seed)
    x_min, x_max = x_range
    X = torch.rand(sample_size)
    X = X * (x_max - x_min) + x_min
    y_hat = X * w_star + b_star
    y = y_hat + torch.normal(torch.zeros(sample_size), sigma * torch.ones(sample_size))
    return X, y


def test_noisy_line_is_the_labs_train_validation_and_test_data():
    ds = data.noisy_line(seed=0)
    for split, n, seed in ((ds.train, 160, 0), (ds.val, 20, 1), (ds.test, 20, 2)):
        x, y = lab_create_dataset(n, 1.3, 3, 2, (-2, 2), seed)
        assert split.x.shape == (n, 1)
        assert torch.equal(split.x[:, 0], x)
        assert torch.equal(split.y, y)
    assert ds.true_params["w"].tolist() == [3.0] and ds.true_params["b"].tolist() == [2.0]


def test_noisy_line_leaves_the_rng_where_the_lab_does():
    """In the lab nn.Linear(1, 1) is made right after the three create_dataset calls and
    starts at w = -0.2032, b = 0.5817."""
    data.noisy_line(seed=0)
    model = torch.nn.Linear(1, 1)
    assert model.weight.item() == pytest.approx(-0.2032, abs=1e-4)
    assert model.bias.item() == pytest.approx(0.5817, abs=1e-4)


def test_linear_features_is_the_tutorials_problem():
    """x: (10, 3), y = x @ w_true + b_true exactly; the logistic version thresholds y."""
    ds = data.linear_features(n=10, d=3, seed=2)
    x, y = ds.train.x, ds.train.y
    assert x.shape == (10, 3) and y.shape == (10,)
    w, b = ds.true_params["w"], ds.true_params["b"]
    assert w.shape == (3,) and b.shape == (1,)
    np.testing.assert_allclose(x.numpy() @ w + b, y.numpy(), rtol=1e-6, atol=1e-6)
    labels = data.linear_features(n=10, d=3, seed=2, threshold=True)
    assert torch.equal(labels.train.x, x)
    assert torch.equal(labels.train.y, (y > 0).float())
    assert labels.task == "classification" and labels.n_classes == 2
    assert torch.equal(data.linear_features(seed=2).train.x, x)  # deterministic
    assert not torch.equal(data.linear_features(seed=3).train.x, x)


@pytest.mark.parametrize("shape", sorted(data.CLASSIFICATION_SETS))
def test_two_class_sets_are_seeded_balanced_and_split(shape):
    ds = data.classification_2d(shape, n=200, noise=0.1, val_fraction=0.2, seed=5)
    assert len(ds.train) == 160 and len(ds.val) == 40
    y = torch.cat([ds.train.y, ds.val.y])
    assert set(y.tolist()) == {0.0, 1.0}
    if shape == "xor":  # labels follow the quadrants of uniform points
        assert 80 <= y.sum().item() <= 120
    else:
        assert y.sum().item() == 100
    again = data.classification_2d(shape, n=200, noise=0.1, val_fraction=0.2, seed=5)
    assert torch.equal(again.train.x, ds.train.x) and torch.equal(again.val.y, ds.val.y)
    other = data.classification_2d(shape, n=200, noise=0.1, val_fraction=0.2, seed=6)
    assert not torch.equal(other.train.x, ds.train.x)


def all_points(ds) -> tuple[np.ndarray, np.ndarray]:
    return (
        torch.cat([ds.train.x, ds.val.x]).numpy(),
        torch.cat([ds.train.y, ds.val.y]).numpy(),
    )


def test_the_sets_look_like_their_names():
    x, y = all_points(data.classification_2d("xor", n=400, noise=0.1, seed=0))
    same_sign = (x[:, 0] * x[:, 1] > 0).astype(np.float32)
    assert (same_sign == y).mean() > 0.9  # opposite quadrants share a class

    x, y = all_points(data.classification_2d("circle", n=400, noise=0.1, seed=0))
    r = np.hypot(x[:, 0], x[:, 1])
    assert r[y == 1].max() < r[y == 0].min() + 1.0  # inner disc is class 1, ring is class 0
    assert np.median(r[y == 1]) < 2 < np.median(r[y == 0])

    x, y = all_points(data.classification_2d("two_gaussians", n=400, noise=0.1, seed=0))
    np.testing.assert_allclose(x[y == 1].mean(axis=0), [2, 2], atol=0.3)
    np.testing.assert_allclose(x[y == 0].mean(axis=0), [-2, -2], atol=0.3)


def test_an_unknown_2d_shape_is_a_data_error():
    with pytest.raises(DataError) as info:
        data.classification_2d("moons")
    assert info.value.field == "data.shape" and "moons" in info.value.reason


@pytest.mark.parametrize(
    "x, y, field, words",
    [
        ([[1.0, 2.0], [3.0]], [1.0, 2.0], "data.x", "rectangular"),
        ([], [], "data.x", "empty"),
        ([1.0, float("nan")], [1.0, 2.0], "data.x", "NaN"),
        ([1.0, 2.0], [1.0, float("inf")], "data.y", "infinity"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "data.y", "has 2 values but x has 3 rows"),
        ([1.0, 2.0], [[1.0], [2.0]], "data.y", "flat list"),
        (["a", "b"], [1.0, 2.0], "data.x", "numbers"),
    ],
    ids=["ragged", "empty", "nan", "inf", "lengths", "nested y", "strings"],
)
def test_inline_data_is_validated(x, y, field, words):
    with pytest.raises(DataError) as info:
        data.inline_split(x, y, "data")
    assert info.value.field == field
    assert words in info.value.reason


def test_inline_data_of_one_feature_becomes_a_column():
    split = data.inline_split([2.0, 4.0], [20.0, 40.0], "data")
    assert split.x.shape == (2, 1) and split.y.shape == (2,)
    assert split.x.dtype == torch.float32


def test_read_csv_takes_the_named_columns_in_order():
    x, y = data.read_csv(DATA / "line.csv", ["temperature", "hours"], "score")
    rows = np.genfromtxt(DATA / "line.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(x.numpy()[:, 0], rows["temperature"].astype(np.float32))
    np.testing.assert_array_equal(x.numpy()[:, 1], rows["hours"].astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), rows["score"].astype(np.float32))


@pytest.mark.parametrize(
    "text, words",
    [
        ("a,b\n1,2\n", ["no column", "'score'", "a"]),
        ("hours,score\n", ["no rows"]),
        ("hours,score\n1,x\n", ["non-numeric"]),
    ],
    ids=["missing column", "no rows", "not a number"],
)
def test_read_csv_says_what_is_wrong(tmp_path, text, words):
    path = tmp_path / "mine.csv"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        data.read_csv(path, ["hours"], "score")
    assert "mine.csv" in info.value.reason
    for word in words:
        assert word in info.value.reason


def test_split_fraction_partitions_the_samples():
    split = data.inline_split(list(range(10)), list(range(10)), "data")
    train, val = data.split_fraction(split, 0.3, seed=1)
    assert len(train) == 7 and len(val) == 3
    ids = sorted(train.y.tolist() + val.y.tolist())
    assert ids == list(range(10))
    assert torch.equal(train.x[:, 0], train.y)  # rows stay paired
    with pytest.raises(DataError):
        data.split_fraction(data.inline_split([1.0, 2.0], [1.0, 2.0], "data"), 0.9, seed=0)


def test_declared_classification_needs_class_labels():
    assert data.infer_task(torch.tensor([0.0, 1.0, 2.0]), "classification") == (
        "classification",
        3,
    )
    with pytest.raises(DataError) as info:
        data.infer_task(torch.tensor([0.5, 1.0]), "classification")
    assert info.value.field == "data.y"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_read_csv_reads_a_large_table_as_python_would(tmp_path, newline):
    """The fast reader (numpy's) and the row-by-row one (Python's float) give the same
    float32 values; quoted fields, extra columns and a missing final newline included."""
    rng = np.random.default_rng(7)
    values = rng.normal(size=(5000, 3)) * 10.0 ** rng.integers(-8, 8, size=(5000, 3))
    lines = ["id,x1,x2,y"] + [
        f'{i},"{a!r}",{b!r},{c!r}' for i, (a, b, c) in enumerate(values.tolist())
    ]
    path = tmp_path / "big.csv"
    path.write_bytes(newline.join(lines).encode())
    assert data._read_csv_fast(path.read_bytes(), ["x1", "x2"], "y") is not None  # numpy's
    x, y = data.read_csv(path, ["x1", "x2"], "y")
    want = values.astype(np.float32)  # Python's float(text), rounded to float32
    np.testing.assert_array_equal(x.numpy(), want[:, :2])
    np.testing.assert_array_equal(y.numpy(), want[:, 2])
    slow_x, slow_y = data._read_csv_rows(path.read_text(), "big.csv", ["x1", "x2"], "y")
    assert torch.equal(x, slow_x) and torch.equal(y, slow_y)


def test_a_bad_value_deep_in_a_large_table_is_named_by_row_and_column(tmp_path):
    rows = ["hours,score"] + [f"{i},{2 * i}" for i in range(20000)]
    rows[15000] = "7,seven"
    path = tmp_path / "deep.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as info:
        data.read_csv(path, ["hours"], "score")
    assert "row 15001, column 'score'" in info.value.reason and "seven" not in info.value.reason


def test_a_table_that_grew_after_it_was_read_is_parsed_from_the_bytes_read(tmp_path):
    """The fast reader parses the open file by name (numpy reads that in large blocks);
    if the file holds more rows than the bytes that were read, checked and counted, those
    bytes are what is parsed."""
    path = tmp_path / "grows.csv"
    path.write_text("hours,score\n1,2\n3,4\n")
    content = path.read_bytes()
    with path.open("a") as fh:
        fh.write("5,6\n7,8\n")
    got = data._read_csv_fast(content, ["hours"], "score", str(path))
    assert got is not None
    assert got[0][:, 0].tolist() == [1.0, 3.0] and got[1].tolist() == [2.0, 4.0]
    whole = data._read_csv_fast(path.read_bytes(), ["hours"], "score", str(path))
    assert whole is not None and whole[1].tolist() == [2.0, 4.0, 6.0, 8.0]
    gone = data._read_csv_fast(content, ["hours"], "score", str(tmp_path / "missing.csv"))
    assert gone is not None and gone[1].tolist() == [2.0, 4.0]  # the name did not open
