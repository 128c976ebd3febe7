"""Reading a ``.npz`` file of plain arrays without trusting it: the session file's archive.

``np.load`` trusts an archive's sizes: an array header that declares a billion elements
is allocated before a byte of it is read, and a deflated member can expand a
thousandfold. Here every size is checked before anything is allocated: the file is a
regular file within the budget (``playground.files``), the members are few and plainly
named, each member's declared size fits what is left of the budget, each array's header
(``.npy`` format, read by numpy's own header parser) declares a plain numeric dtype and
exactly as many bytes as the member holds. Pickles and object arrays never load.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np

from playground.files import FileError, open_regular, size_text

MAX_MEMBERS = 4096
PLAIN_KINDS = "fiub"  # float, signed and unsigned integer, bool


class NpzError(ValueError):
    """An archive that is not read: why (the file is named by the caller)."""


def read_npz(path: Path, limit: int) -> dict[str, np.ndarray]:
    """Every array of the archive at ``path`` (at most ``limit`` bytes in all), by name."""
    try:
        with open_regular(path, limit, "session file") as fh:
            return _members(fh, limit)
    except FileError as exc:
        raise NpzError(exc.reason) from exc


def _members(fh: io.BufferedReader, limit: int) -> dict[str, np.ndarray]:
    head = fh.read(4)
    fh.seek(0)
    if head[:1] == b"\x80":
        raise NpzError("not a playground session file (.npz): it looks like a pickle, never loaded")
    try:
        archive = zipfile.ZipFile(fh)
    except NotImplementedError as exc:  # e.g. a "zip version needed" byte that is off
        raise NpzError(f"corrupt archive ({exc})") from exc
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise NpzError("not a playground session file (.npz)") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise NpzError(f"{len(infos)} members: more than a session file has")
        total = sum(i.file_size for i in infos)
        # what reading it takes at its peak: the arrays, the tensors the session makes of
        # them, and one member's bytes being decoded
        need = 2 * total + max((i.file_size for i in infos), default=0)
        if need > limit:
            raise NpzError(
                f"its arrays would take {size_text(total)} (about {size_text(need)} while "
                f"loading), more than the {size_text(limit)} a session file may use"
            )
        out: dict[str, np.ndarray] = {}
        for info in infos:
            name = info.filename
            if not name.endswith(".npy") or not name[:-4].isprintable() or len(name) > 200:
                raise NpzError(f"member {name[:60]!r} is not an array")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise NpzError(f"member {name[:60]!r}: unsupported compression")
            try:
                raw = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
                raise NpzError(f"corrupt archive ({type(exc).__name__}: {exc})") from exc
            except Exception as exc:  # noqa: BLE001 - zlib raises its own kinds on bad bytes
                raise NpzError(f"corrupt archive ({type(exc).__name__})") from exc
            out[name[:-4]] = _array(name[:-4], raw)
    return out


def _array(name: str, raw: bytes) -> np.ndarray:
    """One ``.npy`` member: its header checked against its size before it is read."""
    fh = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise NpzError(f"array {name!r}: .npy version {version} is not read")
    except NpzError:
        raise
    except ValueError as exc:  # numpy says "Cannot load file containing pickled data" too
        raise NpzError(f"array {name!r}: not a plain .npy array ({exc})") from exc
    if dtype.hasobject or dtype.kind not in PLAIN_KINDS or dtype.fields is not None:
        raise NpzError(
            f"array {name!r}: refused: dtype {dtype} - session files hold plain numbers only"
        )
    if any(type(n) is not int or n < 0 for n in shape) or len(shape) > 8:
        raise NpzError(f"array {name!r}: malformed shape")
    count = math.prod(shape)
    offset = fh.tell()
    if count * dtype.itemsize != len(raw) - offset:
        raise NpzError(
            f"array {name!r}: its header declares {count * dtype.itemsize} bytes, "
            f"the archive holds {len(raw) - offset}"
        )
    a = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
    return a.reshape(shape, order="F" if fortran else "C")
