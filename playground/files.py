"""Reading and writing the playground's files safely: one writer, one bounded reader.

Every file the playground writes (a session, its sidecar, the exports, the theme) goes
through ``write_atomic``: a temporary file of its own in the target's folder, opened
with ``O_EXCL | O_NOFOLLOW`` (never an existing file, never through a planted symbolic
link), written, flushed to the disk (``fsync``), then renamed over the target, so the
target holds either the old file or the whole new one - never a part. The temporary
file is removed on every failure. A target that is not a regular file (a FIFO, a
device, a folder, a symbolic link) is refused by name, never replaced.

Every file it reads goes through ``read_limited`` or ``open_regular``: a regular file
only (``/dev/zero`` or a FIFO is refused before it is opened, and opening never
blocks), at most so many bytes. ``parse_json`` bounds how deeply a document nests.

``lock`` / ``unlock``: an advisory lock next to a file (an autosave in use by a running
instance). Torch-free and textual-free: the bottom layer, the UI uses it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

try:  # advisory locks (POSIX); elsewhere every lock is granted
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

MAX_JSON_DEPTH = 64  # nesting of any JSON document we read (a session's is at most ~8)

_fsync = os.fsync  # the one place data is flushed to the disk (tests slow it down)


class FileError(OSError):
    """A file that is not read or written: which file and why (the message says both)."""

    def __init__(self, path: str | Path, reason: str, errno: int | None = None) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason
        if errno is not None:
            self.errno = errno


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def size_text(n: int) -> str:
    """``n`` bytes as '3.2 MiB'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


# --- writing ------------------------------------------------------------------------


def check_target(path: str | Path) -> Path:
    """``path`` as a target to write: refused (FileError) when something other than a
    regular file is there; its folder is made if missing."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise FileError(p, f"cannot write: {exc.strerror or exc}", exc.errno) from exc
    if st is not None and not stat.S_ISREG(st.st_mode):
        what = _kind(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            what += f" (to {os.readlink(p)}): give the file it points to instead"
        raise FileError(p, f"is {what}, not a regular file: nothing was written")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileError(
            p.parent, f"cannot make the folder: {exc.strerror or exc}", exc.errno
        ) from exc
    return p


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None] | bytes | str) -> Path:
    """Replace ``path`` by what ``write(fh)`` writes to a binary file (or by these bytes
    or this UTF-8 text), atomically; see the module docstring. Errors are OSErrors
    naming the file (``FileError`` for a target that is not a regular file)."""
    p = check_target(path)
    fd, tmp = _temporary(p)
    try:
        try:
            mode = stat.S_IMODE(os.stat(p).st_mode)
            os.fchmod(fd, mode)  # a replaced file keeps its permissions
        except FileNotFoundError:
            pass
        with os.fdopen(fd, "wb", closefd=False) as fh:
            if callable(write):
                write(fh)
            else:
                fh.write(write.encode("utf-8") if isinstance(write, str) else write)
            fh.flush()
            _fsync(fd)
        os.close(fd)
        fd = -1
        check_target(p)  # still nothing but a regular file (or nothing) there
        os.replace(tmp, p)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, FileError):
            raise FileError(p, f"cannot write: {exc.strerror or exc}", exc.errno) from exc
        raise
    _sync_folder(p.parent)
    return p


def _temporary(p: Path) -> tuple[int, str]:
    """A new file next to ``p`` with a name of its own (never an existing one, never
    through a link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    for _ in range(16):
        tmp = str(p.parent / f".{p.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise FileError(p, f"cannot write: {exc.strerror or exc}", exc.errno) from exc
    raise FileError(p, "cannot write: no free temporary name")  # pragma: no cover


def _sync_folder(folder: Path) -> None:
    """The rename itself on the disk too (best effort: not every system can)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        _fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- reading ------------------------------------------------------------------------


@contextlib.contextmanager
def open_regular(path: str | Path, limit: int, what: str = "file") -> Iterator[IO[bytes]]:
    """``path`` opened for reading: a regular file of at most ``limit`` bytes, refused
    (FileError) otherwise - before it is opened, and opening never blocks."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise FileError(p, f"cannot read: {exc.strerror or exc}", exc.errno) from exc
    _check_regular(p, st, limit, what)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileError(p, f"cannot read: {exc.strerror or exc}", exc.errno) from exc
    try:
        _check_regular(p, os.fstat(fd), limit, what)  # the file opened is the one looked at
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        yield fh


def _check_regular(p: Path, st: os.stat_result, limit: int, what: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise FileError(p, f"is {_kind(st.st_mode)}, not a {what}")
    if st.st_size > limit:
        raise FileError(
            p, f"is {size_text(st.st_size)}, more than a {what} may be ({size_text(limit)})"
        )


def read_limited(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see ``open_regular``);
    a file that grows past the limit while read (``/proc``) is refused too."""
    with open_regular(path, limit, what) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FileError(path, f"is more than a {what} may be ({size_text(limit)})")
    return data


class JSONRefused(ValueError):
    """A JSON document that is not read: not JSON, or nested too deeply."""


def parse_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON document (strict: no NaN or Infinity), nested at most ``max_depth`` deep."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:
        raise JSONRefused("nested too deeply") from exc
    except json.JSONDecodeError as exc:  # its message has the position, not the text
        raise JSONRefused(f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if depth(doc) > max_depth:
        raise JSONRefused(f"nested more than {max_depth} deep")
    return doc


def _no_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not JSON")


def depth(doc: Any) -> int:
    """How deeply lists and objects nest in ``doc`` (without recursion)."""
    deepest = 0
    todo = [(doc, 1)]
    while todo:
        value, level = todo.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level)
            todo.extend((v, level + 1) for v in value if isinstance(v, (list, dict)))
    return deepest


def read_json(path: str | Path, limit: int, what: str = "JSON file") -> Any:
    """A small JSON file, bounded in size and depth (FileError / JSONRefused)."""
    raw = read_limited(path, limit, what)
    try:
        return parse_json(raw)
    except UnicodeDecodeError as exc:
        raise JSONRefused("not UTF-8 text") from exc


# --- locks --------------------------------------------------------------------------

_HELD: dict[str, int] = {}  # lock files this process holds, by the path they guard


def _lock_file(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def lock(path: str | Path) -> bool:
    """Take the advisory lock of ``path`` (held until ``unlock`` or the process ends);
    False when anyone holds it already - another process, or this one. A folder that
    cannot be written grants it (nothing can be written there to race over either)."""
    p = Path(path)
    key = str(p)
    if key in _HELD:
        return False
    if fcntl is None:  # pragma: no cover
        _HELD[key] = -1
        return True
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(_lock_file(p), flags, 0o600)
    except OSError:
        _HELD[key] = -1
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _HELD[key] = fd
    return True


def unlock(path: str | Path) -> None:
    fd = _HELD.pop(str(Path(path)), None)
    if fd is not None and fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the descriptor releases the lock


def held(path: str | Path) -> bool:
    """True when someone - another process, or a holder in this one - has ``path``'s lock."""
    p = Path(path)
    if str(p) in _HELD:
        return True
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(_lock_file(p), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False  # no lock file: nobody has ever held it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
