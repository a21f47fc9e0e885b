"""Safe file writing: nothing half-written is ever left at a target path.

Files are written beside their target under a temporary name, flushed to
disk and then moved into place with :func:`os.replace`, which is atomic on
POSIX file systems. An interruption leaves either the old file or the new
one, never a mixture.
"""

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import UsageError


@contextlib.contextmanager
def atomic_path(target, suffix=".tmp"):
    """Yield a temporary path beside ``target``; move it into place on success.

    Parameters
    ----------
    target : str or Path
        Final location of the file.
    suffix : str
        Ending of the temporary name. It must not be ``.txt`` so that a
        leftover temporary file is never read as a training-set table.

    Notes
    -----
    If the body raises, the temporary file is removed and ``target`` is
    untouched.
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix
    )
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp makes the file private; give it the permissions a plain open()
    # would have.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target, text):
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def make_directory(path, label):
    """Create directory ``path`` (and its parents) if needed, and return it.

    ``label`` names the argument in the one-line :class:`UsageError` raised
    when ``path`` is a file or cannot be created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{label} {path}: is a file; expected a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"{label} {path}: cannot create it ({error.strerror})"
        ) from None
    return path
