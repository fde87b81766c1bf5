"""Read a file for `ports check`: regular files only, BOM/UTF-16 decoded, binaries told apart."""

from __future__ import annotations

import codecs
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 8 * 1024 * 1024
SNIFF_BYTES = 8192
BINARY_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico", ".bmp", ".tiff", ".svgz", ".pdf",
    ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".jar", ".war",
    ".pyc", ".pyo", ".so", ".dylib", ".dll", ".exe", ".o", ".a", ".class", ".wasm", ".bin",
    ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4", ".wav", ".ogg", ".webm",
    ".mov", ".avi", ".sqlite", ".db", ".gguf", ".safetensors", ".onnx", ".pt", ".parquet",
})


@dataclass(frozen=True)
class Unreadable:
    """A file that should be read but cannot be: an error finding."""

    code: str
    message: str


@dataclass(frozen=True)
class NotRead:
    """A file of a kind not read (binary, image, FIFO, device): counted, never an error."""

    reason: str


def decode(data: bytes) -> str | None:
    """Text from bytes: a UTF-8 or UTF-16 BOM decides, else UTF-8; None for other bytes."""
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8):].decode("utf-8")
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_text(path: Path, *, must_read: bool) -> str | Unreadable | NotRead:
    """A file's text; `must_read` (a kind read here) makes undecodable bytes an error."""
    if path.suffix.lower() in BINARY_SUFFIXES and not must_read:
        return NotRead("binary")
    try:
        # Never open a FIFO or a device: opening a FIFO blocks until a writer comes.
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            return NotRead("a directory (a symbolic link in a walked tree)")
        if not stat.S_ISREG(info.st_mode):
            return NotRead("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            if must_read:
                return Unreadable("file-unreadable",
                                  f"larger than {MAX_FILE_BYTES // 2**20} MiB: not checked")
            return NotRead("large file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return Unreadable("file-missing", "the file does not exist")
    except OSError as exc:
        return Unreadable("file-unreadable", f"cannot read the file: {exc.strerror or exc}")
    text = decode(data)
    if text is None or ("\0" in text[:SNIFF_BYTES]):
        if must_read:
            return Unreadable("file-unreadable", "not text (neither UTF-8 nor UTF-16)")
        return NotRead("binary")
    return text
