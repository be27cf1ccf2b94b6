"""Atomic writes: a crash leaves either the old file or the new one, never half of one."""

import json
import os
import re
import tempfile
import time
from pathlib import Path

import torch

from .errors import ClasswiseError, CorruptDataError

_UMASK = os.umask(0)
os.umask(_UMASK)
TEMP_GLOB = ".*.tmp"  # what `_atomic` names its temporary files
# tests only: seconds to hold a temporary file before it replaces its target, so that a kill
# can land in the middle of a write
_DELAY_ENV = "CLASSWISE_TEST_WRITE_DELAY"


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if os.environ.get(_DELAY_ENV):
            time.sleep(float(os.environ[_DELAY_ENV]))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic(path, lambda fh: fh.write(data))


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(path, obj) -> None:
    _atomic(path, lambda fh: torch.save(obj, fh))


def remove_stale_temps(folder) -> list[Path]:
    """Delete the temporary files of atomic writes a kill interrupted (SIGKILL runs no cleanup).
    Only call this where no other process is writing into `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(TEMP_GLOB) if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def safe_name(text: str) -> str:
    """`text` as one folder name: no separators, no `..`, no leading dot (e.g. `tv:../../x`
    becomes `tv-x`), so that a name built from user input stays inside its parent folder."""
    name = _UNSAFE.sub("-", text.replace("..", "-"))
    name = re.sub(r"-{2,}", "-", name).strip("-.")
    return name or "unnamed"


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_out_dir(path, flag: str = "--out") -> None:
    """Refuse, before any work, an output folder that is a file or cannot be created or written."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ClasswiseError(f"{flag} {path} is a file, not a folder; give a folder to write into")
    base = _existing_ancestor(path)
    if not base.is_dir():
        raise ClasswiseError(f"{flag} {path} cannot be created: {base} is a file; give another folder")
    try:  # os.access says yes to root even on a read-only mount: try (an unnamed file leaves no trace)
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise ClasswiseError(f"{flag} {path} is not writable ({base}: {exc.strerror or exc}); "
                             "give another folder") from exc


def check_out_file(path, flag: str) -> None:
    """Refuse, before any work, an output file that is a folder or cannot be written."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ClasswiseError(f"{flag} {path} is a folder; give a file name, e.g. {path / 'out.json'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ClasswiseError(f"{flag} {path} is not writable; give another file")
    check_out_dir(path.parent, flag=f"{flag} folder")


def read_json(path, what: str = "file", hint: str = ""):
    """A JSON file's value, or one line saying why it cannot be read."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ClasswiseError(f"{path} does not exist{hint}") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).split("\n")[0]
        raise CorruptDataError(f"{path} is not a readable {what} ({why}){hint}") from None
