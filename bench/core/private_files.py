"""Files in folders other users might reach (step: every folder and file a sweep creates or trusts, made safe).

A folder another user can write lets that user decide what dnnbench does there: a job file the run executes, a
symbolic link that turns our write into one on a file of their choosing, a FIFO that blocks us. So the sweep folder
and the caches must be the user's own and not writable by group or others (checked before anything runs); files are
created without following a link (O_NOFOLLOW | O_EXCL, or a fresh private file renamed into place), and a file read
back as trusted input must be a regular file of the user's (opening it neither follows a link nor blocks on a FIFO).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from bench.core.errors import SweepError

READABLE = 0o644  # a report's pages and charts: for others to read, as a file written under the usual umask is
CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class NotOwnFile(OSError):
    """A file dnnbench would trust that is a link, not a regular file, or another user's."""


def check_private_folder(folder: Path, what: str) -> None:
    """SweepError unless `folder` is a folder of this user's that group and others cannot write."""
    try:
        info = os.stat(folder)  # through a link: the folder written in is what must be ours
    except OSError as exc:
        raise SweepError(f"{what} {folder} cannot be used ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise SweepError(f"{what} {folder} is not a folder")
    if info.st_uid != os.getuid():
        raise SweepError(f"{what} {folder} belongs to another user (uid {info.st_uid}), who could plant files the "
                         "runs trust: use a folder of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SweepError(f"{what} {folder} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}), who "
                         f"could plant files the runs trust: chmod go-w {folder}, or use another folder")


def private_folder(folder: Path, what: str, mode: int = 0o755) -> Path:
    """`folder` (with its parents) created if missing, with `mode` (the umask cannot add group write), and checked."""
    try:
        folder.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"{what} {folder} cannot be created ({exc.strerror or exc})") from None
    check_private_folder(folder, what)
    return folder


def create_new(path: Path, mode: int = 0o600) -> int:
    """A descriptor on a new empty file at `path`, open for writing: whatever entry was there (an earlier run's
    file, a planted link) is removed first, never followed or written through."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return os.open(path, CREATE_NEW, mode)


def replace_file(path: Path, text: str | bytes, mode: int = 0o600) -> None:
    """`path` now holds `text`, atomically: written to a fresh private file beside it (a random name, O_EXCL) and
    renamed over it (a link at `path` is replaced, not followed; an interrupted write leaves the old file whole)."""
    fd, partial = tempfile.mkstemp(dir=Path(path).parent, prefix=f".{Path(path).name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode() if isinstance(text, str) else text)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def open_own_file(path: Path, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """A descriptor on `path` if it is a regular file of this user's; NotOwnFile if it is a link, a FIFO, a device
    or another user's (never blocking: O_NONBLOCK only matters for what is refused)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotOwnFile(f"{path} is a symbolic link") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(fd)
        kind = "another user's file" if stat.S_ISREG(info.st_mode) else "not a regular file"
        raise NotOwnFile(f"{path} is {kind}")
    os.set_blocking(fd, True)
    return fd


def read_own_file(path: Path) -> str:
    """The text of `path`, a regular file of this user's (else NotOwnFile)."""
    with os.fdopen(open_own_file(path), "rb") as handle:
        return handle.read().decode()
