"""Reading the file being attached: chunk by chunk, and noticing when it changes under us."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

from graphattach.client._errors import FileChanged, InvalidInput

__all__ = ["FileLike", "FileSlice", "FileSource"]

#: Size of the reads that feed a range's request body.
PIECE = 256 * 1024

FileLike = str | os.PathLike[str] | IO[bytes]


class FileSource:
    """A path or a seekable binary file object, read by offset. Only one chunk is held at a time.

    Size and modification time are taken when it is opened; :meth:`check` and every :meth:`read`
    raise :class:`FileChanged` when the file no longer matches them.
    """

    def __init__(self, file: FileLike, name: str | None = None) -> None:
        self._owned = False
        self.path: Path | None = None
        self._handle: IO[bytes] | None = None
        if isinstance(file, str | os.PathLike):
            path = Path(file)
            if not path.exists():
                raise InvalidInput(f"{path}: no such file", code="FileNotFound")
            if path.is_dir():
                raise InvalidInput(f"{path}: is a directory, not a file", code="IsADirectory")
            if not path.is_file():
                raise InvalidInput(f"{path}: not a regular file", code="NotAFile")
            self.path = path
            self.name = name or path.name
        else:
            if not hasattr(file, "read") or not hasattr(file, "seek"):
                raise InvalidInput(f"not a path or a seekable binary file: {file!r}")
            self._handle = file
            given = getattr(file, "name", None)
            self.name = name or (os.path.basename(given) if isinstance(given, str) else "") or ""
            if not self.name:
                raise InvalidInput("a file object without a name: pass name=…")
        self._stat: tuple[int, int] | None = None
        self.size = self._current_size()
        self._stat = self._fingerprint()

    def _fingerprint(self) -> tuple[int, int] | None:
        if self.path is not None:
            st = os.stat(self.path)
            return st.st_size, st.st_mtime_ns
        handle = self._handle
        assert handle is not None
        try:
            st = os.fstat(handle.fileno())
        except (AttributeError, OSError, ValueError):
            return None
        return st.st_size, st.st_mtime_ns

    def _current_size(self) -> int:
        if self.path is not None:
            return os.stat(self.path).st_size
        handle = self._handle
        assert handle is not None
        position = handle.tell()
        size = handle.seek(0, os.SEEK_END)
        handle.seek(position)
        return size

    def open(self) -> FileSource:
        if self._handle is None and self.path is not None:
            try:
                self._handle = open(self.path, "rb")
            except OSError as exc:
                raise InvalidInput(f"{self.path}: cannot read: {exc.strerror}", code="FileNotReadable") from exc
            self._owned = True
        return self

    def close(self) -> None:
        if self._owned and self._handle is not None:
            self._handle.close()
            self._handle = None
            self._owned = False

    def __enter__(self) -> FileSource:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def check(self) -> None:
        """Raise :class:`FileChanged` if the size or modification time moved since opening."""
        try:
            now = self._fingerprint() if self._stat is not None else (self._current_size(), 0)
        except OSError as exc:
            raise FileChanged(f"{self.name}: the file went away during the upload: {exc}") from exc
        expected = self._stat if self._stat is not None else (self.size, 0)
        if now is None or now[0] != expected[0]:
            size = now[0] if now else "?"
            raise FileChanged(f"{self.name}: the file changed size during the upload ({self.size} → {size} bytes)")
        if now[1] != expected[1]:
            raise FileChanged(f"{self.name}: the file was modified during the upload")

    def read(self, offset: int, length: int) -> bytes:
        self.check()
        self.open()
        handle = self._handle
        assert handle is not None
        handle.seek(offset)
        data = handle.read(length)
        if len(data) != length:
            raise FileChanged(f"{self.name}: expected {length} bytes at offset {offset}, read {len(data)}")
        return data

    def read_all(self) -> bytes:
        return self.read(0, self.size)


class FileSlice:
    """``length`` bytes of a source from ``offset``, read piece by piece while they are sent.

    A request body that holds no more than one piece in memory; a short read raises
    :class:`FileChanged`. Each iteration starts again from ``offset`` (a retried request).
    """

    def __init__(self, source: FileSource, offset: int, length: int) -> None:
        self.source = source
        self.offset = offset
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        source = self.source
        source.open()
        handle = source._handle
        assert handle is not None
        position = self.offset
        left = self.length
        while left > 0:
            handle.seek(position)
            piece = handle.read(min(PIECE, left))
            if not piece:
                raise FileChanged(
                    f"{source.name}: the file ended at {position} bytes, {left} short of the range being sent"
                )
            position += len(piece)
            left -= len(piece)
            yield piece

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self:
            yield piece
