"""Fuzzing preset files: whatever a course author (or a typo) puts in a .toml file, loading
it gives a Preset or a PresetError naming the file and field - never another exception,
never a hang, never gigabytes of memory.

Generated sizes are kept small so that each example is cheap; the huge sizes are tried
separately, in a subprocess with a memory cap and a time limit.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.training.catalog import PresetError, preset_infos, preset_paths
from playground.training.presets import load_preset

FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SHIPPED = {p.name: tomllib.loads(p.read_text(encoding="utf-8")) for p in preset_paths()}


# --- a small TOML writer (tomllib only reads) --------------------------------------------


def _key(k: str) -> str:
    return json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict[str, Any]) -> str:
    """Scalars first, then one [table] per top-level dict (nested dicts inline)."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"\n[{_key(k)}]")
            lines += [f"{_key(kk)} = {_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def load_text(text: str | bytes, name: str = "fuzz.toml") -> None:
    """Write ``text`` as a preset file in a fresh folder and load it: a Preset or a
    PresetError naming that file; anything else fails the test."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        (Path(d) / "data.csv").write_text("a,b,c\n1,2,0\n2,4,1\n3,6,0\n", encoding="utf-8")
        try:
            load_preset(path)
        except PresetError as exc:
            assert exc.file == name, f"error names {exc.file!r}, not the file {name!r}"
            assert exc.field and exc.reason


# --- strategies --------------------------------------------------------------------------

SMALL_INTS = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**31 - 1 - 2**31]),
)
FLOATS = st.one_of(
    st.floats(-1e3, 1e3),
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 1.0]),
)
WORDS = st.sampled_from(
    [
        # every name the format knows, and some it does not
        *("inline", "csv", "noisy_line", "linear_features", "classification_2d"),
        *("scalar", "linear", "logistic", "softmax", "mlp", "nope"),
        *("mse", "sse", "bce", "ce", "gd", "sgd", "adam", "relu", "tanh", "sigmoid"),
        *("zero", "none", "randn", "rand", "default", "auto", "cpu", "cuda:7", ""),
        *("blobs", "circle", "xor", "spiral", "two_gaussians", "moons"),
        *("regression", "classification", "data.csv", "missing.csv", "../x.csv", "/"),
        *("a", "b", "c", "\x00", "é", "🙂"),
    ]
)
SCALARS = st.one_of(
    SMALL_INTS,
    FLOATS,
    st.booleans(),
    WORDS,
    st.text(max_size=8),
    st.dates(),
    st.datetimes(),
)
VALUES = st.recursive(
    SCALARS,
    lambda c: st.one_of(
        st.lists(c, max_size=6),
        st.dictionaries(st.one_of(WORDS, st.text(max_size=4)), c, max_size=3),
    ),
    max_leaves=12,
)
NUM_LISTS = st.one_of(
    st.lists(FLOATS, min_size=0, max_size=12),
    st.lists(st.lists(FLOATS, min_size=1, max_size=3), min_size=1, max_size=8),  # maybe ragged
    st.lists(SMALL_INTS.filter(lambda i: abs(i) < 100), max_size=10),
)

DATA_KEYS = [
    *("kind", "x", "y", "task", "val_fraction", "val_x", "val_y", "true_w", "true_b"),
    *("path", "x_columns", "y_column", "n_train", "n_val", "n_test", "sigma", "w_star"),
    *("b_star", "x_range", "n", "d", "w_scale", "b_scale", "threshold", "shape", "noise"),
]
MODEL_KEYS = ["kind", "hidden", "activation", "init"]
TRAIN_KEYS = [
    *("loss", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "betas"),
    *("batch_size", "accumulate", "scale_loss", "zero_grad", "max_steps", "until_loss"),
    *("seed", "device"),
]


def _table(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    key = st.one_of(st.sampled_from(keys), st.text(max_size=6))
    value = st.one_of(SCALARS, NUM_LISTS, VALUES)
    return st.dictionaries(key, value, max_size=7)


@st.composite
def _data_tables(draw: st.DrawFn) -> dict[str, Any]:
    """A working data table of each kind with random keys added or replaced."""
    base = draw(
        st.sampled_from(
            [
                {"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 1.0]},
                {"kind": "noisy_line", "n_train": 8, "n_val": 2, "n_test": 0},
                {"kind": "linear_features", "n": 6, "d": 2},
                {"kind": "classification_2d", "shape": "xor", "n": 10},
                {"kind": "csv", "path": "data.csv", "x_columns": ["a"], "y_column": "b"},
            ]
        )
    )
    extra = draw(_table(DATA_KEYS))
    return {**base, **extra}


DOCS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(WORDS, SCALARS),
        "title": st.one_of(st.text(max_size=20), SCALARS),
        "description": st.text(max_size=20),
        "source": SCALARS,
        "data": st.one_of(_data_tables(), _data_tables(), _table(DATA_KEYS), SCALARS),
        "model": st.one_of(_table(MODEL_KEYS), SCALARS),
        "train": st.one_of(_table(TRAIN_KEYS), SCALARS),
        "expected": VALUES,
        "unknown": SCALARS,
    },
)


@FUZZ
@given(DOCS)
def test_random_documents_load_or_give_preset_errors(doc: dict[str, Any]) -> None:
    """Random preset documents built from the format's own vocabulary (right and wrong
    keys, values of every TOML type, NaN/inf, ragged lists, unknown names)."""
    load_text(to_toml(doc))


TOMLISH = "[]{}=\"'.,#\n -_abcdxyznkind0123456789eE+truefalsnif"


@FUZZ
@given(
    st.one_of(
        st.text(alphabet=TOMLISH, max_size=200),
        st.text(max_size=100),
        st.binary(max_size=100),
    )
)
def test_random_text_and_bytes_give_preset_errors(text: str | bytes) -> None:
    """Arbitrary text or bytes in a .toml file (not UTF-8, not TOML, half a file)."""
    load_text(text)


# --- mutations of the shipped presets ----------------------------------------------------


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


REPLACEMENTS = st.one_of(
    st.sampled_from(
        [0, -1, -5, 1, 2**63 - 1, -(2**63), 10**5, 0.0, -0.5, 1e308, math.nan, math.inf]
    ),
    st.sampled_from([True, "", "nope", [], [1, [2]], {}, {"a": 1}, dt.date(2020, 1, 1)]),
    SCALARS,
    NUM_LISTS,
)


@st.composite
def mutated_presets(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(SHIPPED)))
    doc = json.loads(json.dumps(SHIPPED[name]))  # a deep copy
    for _ in range(draw(st.integers(1, 2))):
        paths = _paths(doc)
        if not paths:
            break
        data_paths = [p for p in paths if p[0] == "data"]
        # half of the mutations hit the data table, where sizes and arrays are
        path = draw(st.sampled_from(data_paths if data_paths and draw(st.booleans()) else paths))
        parent = _get(doc, path[:-1])
        how = draw(st.sampled_from(["drop", "replace", "replace", "rename", "ragged", "add"]))
        if how == "drop":
            del parent[path[-1]]
        elif how == "replace":
            parent[path[-1]] = copy.deepcopy(draw(REPLACEMENTS))
        elif how == "rename" and isinstance(parent, dict):
            parent[path[-1] + draw(st.sampled_from(["_", "s", "X"]))] = parent.pop(path[-1])
        elif how == "ragged":
            value = parent[path[-1]]
            if isinstance(value, list) and value:
                # a fresh copy: sampled_from hands out the same list object every time
                value[draw(st.integers(0, len(value) - 1))] = copy.deepcopy(
                    draw(st.sampled_from([[], [1.0, 2.0], "a", [[1]]]))
                )
            else:
                parent[path[-1]] = [value, [value]]
        elif how == "add" and isinstance(parent, dict):
            key = draw(st.sampled_from(["extra", "kind", "n", "true_w", "d", "seed"]))
            parent[key] = copy.deepcopy(draw(REPLACEMENTS))
    return doc


@FUZZ
@given(mutated_presets())
def test_mutated_shipped_presets_load_or_give_preset_errors(doc: dict[str, Any]) -> None:
    """Each shipped preset with a key dropped or renamed, a value of the wrong type,
    negative / zero / huge / NaN numbers, a ragged list, an unknown name."""
    load_text(to_toml(doc))


def test_shipped_presets_all_load() -> None:
    """The baseline of the mutations: every shipped preset loads as it is."""
    infos, errors = preset_infos()
    assert not errors
    for info in infos:
        load_preset(info.path)


# --- known inputs, each on its own -------------------------------------------------------

LINE = "[data]\nx = [1.0, 2.0, 3.0]\ny = [2.0, 4.0, 6.0]\n"


@pytest.mark.parametrize(
    "text",
    [
        LINE + 'true_w = "abc"\n',  # true weights that are not numbers
        LINE + "true_w = [[1.0], [2.0, 3.0]]\n",
        LINE + 'true_w = [1.0]\ntrue_b = "q"\n',
        '[data]\nkind = "linear_features"\nn = 9223372036854775807\n',  # size overflow
        '[data]\nkind = "classification_2d"\nshape = "xor"\nn = 9223372036854775807\n',
        '[data]\nkind = "noisy_line"\nn_train = 9223372036854775807\n',
        '[data]\nkind = "linear_features"\nn = 1000000\nd = 1000000\n',  # 4 TB
        pytest.param("a = " + "[" * 3000 + "]" * 3000 + "\n", id="nested-arrays-3000"),
        pytest.param("a = " + "{b = " * 3000 + "1" + "}" * 3000 + "\n", id="nested-tables-3000"),
        '[data]\nkind = "csv"\npath = "a\\u0000b.csv"\nx_columns = ["a"]\ny_column = "b"\n',
        '[data]\nkind = "classification_2d"\nshape = "xor"\nn = 2\nval_fraction = 0.9\n',
    ],
)
def test_known_bad_presets_give_preset_errors(text: str) -> None:
    """Documents that have broken the loader: each gives a PresetError naming the file
    (an empty training set counts as an error, not as a preset that loads)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "known.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(PresetError) as info:
            load_preset(path)
        assert info.value.file == "known.toml"


_HUGE = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from pathlib import Path
from playground.training.catalog import PresetError
from playground.training.presets import load_preset
results = {}
for i, text in enumerate(json.loads(sys.argv[1])):
    path = Path(sys.argv[2]) / f"huge{i}.toml"
    path.write_text(text, encoding="utf-8")
    t0 = time.monotonic()
    try:
        load_preset(path)
        out = "LOADED"
    except PresetError as e:
        out = "PresetError"
    except BaseException as e:
        out = f"{type(e).__name__}: {str(e)[:160]}"
    results[text] = [out, round(time.monotonic() - t0, 2)]
print(json.dumps(results))
"""

HUGE = [
    '[data]\nkind = "classification_2d"\nshape = "blobs"\nn = 1000000000\n',
    '[data]\nkind = "classification_2d"\nshape = "spiral"\nn = 1000000000\n',
    '[data]\nkind = "noisy_line"\nn_train = 1000000000\n',
    '[data]\nkind = "noisy_line"\nn_train = 10\nn_val = 1000000000\n',
    '[data]\nkind = "linear_features"\nn = 1000000000\n',
    '[data]\nkind = "linear_features"\nn = 10\nd = 1000000000\n',
]


def test_huge_sizes_are_refused_quickly_without_gigabytes(tmp_path: Path) -> None:
    """n = 10**9 samples (a typo of one zero too many, or a hostile file): refused with a
    PresetError in seconds, under a 3 GiB memory cap - not minutes of allocation."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _HUGE, json.dumps(HUGE), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("loading presets with n = 10**9 took more than 120 s")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = {t.split("\n", 1)[1].strip(): r for t, r in results.items() if r[0] != "PresetError"}
    assert not bad, f"not refused with a PresetError: {bad}"
    slow = {t: r for t, r in results.items() if r[1] > 10}
    assert not slow, f"took more than 10 s: {slow}"
