"""Files that appear whole or not at all: written under a temporary name, then renamed over the target."""
import contextlib
import os
from typing import IO, Iterator


def _tmp_name(path: str, suffix: str) -> str:
    # Next to the target (same file system, so the rename is atomic); the pid keeps racing writers apart.
    return f"{path}.tmp-{os.getpid()}{suffix}"


def _remove(tmp: str) -> None:
    try:
        os.remove(tmp)
    except FileNotFoundError:
        pass


class AtomicFile:
    """An open file that replaces `path` when committed (or when a `with` block ends without an
    error); abandoned (or on an error) it leaves `path` as it was. Text modes are UTF-8, newline=''."""

    def __init__(self, path: str, mode: str = "w") -> None:
        self.path, self.tmp = path, _tmp_name(path, "")
        self.file: IO = open(self.tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""}))

    def commit(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)

    def abandon(self) -> None:
        self.file.close()
        _remove(self.tmp)

    def __enter__(self) -> IO:
        return self.file

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abandon()


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """A temporary name for writers that take a file name (torch.save, h5py, ffmpeg); it replaces
    `path` when the block ends without an error and is removed otherwise. `suffix` keeps an extension
    the writer needs (ffmpeg picks the container by it)."""
    tmp = _tmp_name(path, suffix)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
    """`text` as the whole of `path` (UTF-8), replaced atomically."""
    with AtomicFile(path) as f:
        f.write(text)


def write_bytes(path: str, data: bytes) -> None:
    with AtomicFile(path, "wb") as f:
        f.write(data)
