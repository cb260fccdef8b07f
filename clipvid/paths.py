"""Checks on the paths a command line names, made before any work so a mistake costs nothing."""
import os

from clipvid.errors import DataError, UsageError


def require_input(path: str) -> None:
    """An input that is not there is unusable (exit 3), named in the message."""
    if not os.path.exists(path):
        raise DataError(path, "no such file or folder")


def _first_existing(path: str) -> str:
    folder = os.path.abspath(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return folder


def writable_folder(path: str) -> None:
    """--out FOLDER: a folder, or a name whose first existing ancestor is a writable folder (missing
    folders are made later); anything else is a usage error (exit 2)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{path}: exists and is not a folder")
    _writable_parent(path, _first_existing(path))


def writable_file(path: str) -> None:
    """--out FILE: not a folder, and its first existing ancestor is a writable folder (exit 2 otherwise)."""
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory; --out takes a file name")
    _writable_parent(path, _first_existing(os.path.dirname(os.path.abspath(path))))


def _writable_parent(path: str, folder: str) -> None:
    if not os.path.isdir(folder):
        raise UsageError(f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: folder {folder} is not writable")
