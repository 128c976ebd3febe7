"""Item 5: files read through error messages. A preset's CSV ``path`` is a file in the
preset's folder - never an absolute path, a ``..``, a link out of it or /proc - and no
error message ever quotes a file's contents (the header row, a value, a line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from playground.training.catalog import PresetError
from playground.training.presets import load_preset
from tests.hostile.conftest import Watch, doc_of, read_arrays, refused, session, write_session

SECRET = "root:$6$SECRETHASH:19000:0:99999:7:::"


def _csv_preset(folder: Path, path: str, x: str = "a", y: str = "b") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "csv.toml"
    p.write_text(
        'name = "csv"\ntitle = "csv"\n[data]\nkind = "csv"\n'
        f"path = {json.dumps(path)}\nx_columns = [{json.dumps(x)}]\ny_column = {json.dumps(y)}\n"
    )
    return p


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the preset's folder, holding something never to be shown."""
    p = tmp_path / "private" / "shadow"
    p.parent.mkdir()
    p.write_text(f"{SECRET}\nbin:x:1:1\n")
    return p


@pytest.mark.parametrize(
    "where",
    ["absolute", "dotdot", "link", "proc", "environ"],
)
def test_a_csv_path_out_of_the_preset_folder_is_refused_unread(
    where: str, secret: Path, tmp_path: Path, watch: Any
) -> None:
    folder = tmp_path / "course"
    folder.mkdir()
    path = {
        "absolute": str(secret),
        "dotdot": "../private/shadow",
        "link": "data.csv",
        "proc": "/proc/self/status",
        "environ": "/proc/self/environ",
    }[where]
    if where == "link":
        (folder / "data.csv").symlink_to(secret)
    preset = _csv_preset(folder, path, x="root", y="bin")
    w: Watch = watch()
    with pytest.raises(PresetError) as info:
        load_preset(preset)
    msg = str(info.value)
    assert info.value.field == "data.path" and "outside the preset's folder" in msg
    assert "csv.toml" in msg and "SECRETHASH" not in msg and "root:" not in msg
    w.only()


def test_a_csv_beside_the_preset_and_below_it_loads(tmp_path: Path) -> None:
    folder = tmp_path / "course"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "d.csv").write_text("a,b\n1,2\n2,4\n")
    ds = load_preset(_csv_preset(folder, "data/d.csv")).build_dataset()
    assert ds.train.y.tolist() == [2.0, 4.0]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (f"{SECRET}\n1,2\n", "no column"),  # the header row is someone's secret
        (f"a,b\n{SECRET},2\n", "row 2, column 'a': a non-numeric value"),
        ("a,b\n1\n", "fewer columns"),
        ("a,b\nnan,2\n", "NaN or infinity"),
        ("a,b\n1,inf\n", "NaN or infinity"),
        ("a,b\n" + "x" * 200_000 + "\n", "not a CSV table"),
        (b"a,b\n\xff\xfe,1\n", "not UTF-8"),
    ],
)
def test_csv_errors_name_row_and_column_never_the_contents(
    content: str | bytes, says: str, tmp_path: Path
) -> None:
    folder = tmp_path / "course"
    folder.mkdir()
    target = folder / "d.csv"
    target.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(PresetError) as info:
        load_preset(_csv_preset(folder, "d.csv"))
    msg = str(info.value)
    assert says in msg and "d.csv" in msg
    assert "SECRETHASH" not in msg and "xxxxxxxx" not in msg


def test_a_shared_session_file_pointing_its_preset_elsewhere_reads_nothing_there(
    secret: Path, tmp_path: Path, watch: Any
) -> None:
    """A session file names a preset in another folder whose CSV path leads to the
    secret: the preset's own rule applies (its folder only) and nothing is echoed."""
    evil = _csv_preset(tmp_path / "evil", str(secret), x="root", y="bin")
    s = session()
    from playground.training.persist import save_session

    saved = save_session(s, tmp_path / "shared.npz")
    arrays = read_arrays(saved)
    doc = doc_of(arrays)
    doc["preset"] = {"name": "csv", "path": str(evil)}
    bad = write_session(tmp_path / "shared.npz", arrays, doc)
    w: Watch = watch()
    msg = refused(bad, "preset", "data.path")
    assert "SECRETHASH" not in msg and "root:" not in msg
    w.only()


def test_a_session_file_naming_a_non_preset_file_is_refused_without_its_contents(
    secret: Path, tmp_path: Path
) -> None:
    secret_toml = secret.with_suffix(".toml")
    secret_toml.write_text(secret.read_text())
    s = session()
    from playground.training.persist import save_session

    saved = save_session(s, tmp_path / "s.npz")
    arrays = read_arrays(saved)
    doc = doc_of(arrays)
    doc["preset"] = {"name": "x", "path": str(secret_toml)}
    msg = refused(write_session(saved, arrays, doc), "preset")
    assert "SECRETHASH" not in msg


def test_a_toml_error_names_the_place_not_the_text(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(f'name = "x"\n{SECRET}\n')
    with pytest.raises(PresetError) as info:
        load_preset(p)
    assert "SECRETHASH" not in str(info.value) and "line 2" in str(info.value)


def test_a_long_hostile_value_is_quoted_short(tmp_path: Path) -> None:
    p = tmp_path / "long.toml"
    p.write_text('name = "x"\n[data]\nkind = "' + "k" * 5000 + '"\n')
    with pytest.raises(PresetError) as info:
        load_preset(p)
    assert len(str(info.value)) < 700
