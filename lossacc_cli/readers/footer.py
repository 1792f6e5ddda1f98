"""The Parquet footer, read just far enough to know that Arrow's metadata objects can be built.

Arrow builds a column chunk's metadata object (``RowGroupMetaData.column(i)``) with checks that
throw C++ exceptions, and its Python binding does not catch them: a damaged footer (size
statistics whose level histograms do not fit the schema, encrypted column metadata, a row group
with more or fewer columns than the schema) ends the whole process with ``std::terminate``
(SIGABRT, no message). Before any column chunk is looked at, :func:`unsafe_chunks` reads those
fields from the footer's bytes (Thrift compact protocol) and says what is wrong, so that it is an
input error instead. Reading the data itself is safe: Arrow's readers catch the same exceptions.

Only the fields checked are decoded; everything else is skipped. About 1 microsecond per field
(a footer of 6 columns in 1 row group: ~0.2 ms).
"""

from __future__ import annotations

import os
import struct

_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(13)

MAX_FOOTER_BYTES = 256 << 20
"""A footer longer than this is damage (Arrow refuses footers over ~2**31 too)."""


class _Bad(Exception):
    """The footer's bytes do not parse."""


class _Reader:
    __slots__ = ("data", "at")

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def varint(self) -> int:
        data, at = self.data, self.at
        value = shift = 0
        while True:
            if at >= len(data):
                raise _Bad("footer ends inside a number")
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.at = at
                return value
            shift += 7
            if shift > 70:
                raise _Bad("number too long")

    def skip(self, kind: int, depth: int = 0) -> None:
        if depth > 64:
            raise _Bad("footer nested too deeply")
        if kind in (_TRUE, _FALSE):
            return
        if kind == _BYTE:
            self.at += 1
        elif kind in (_I16, _I32, _I64):
            self.varint()
        elif kind == _DOUBLE:
            self.at += 8
        elif kind == _BINARY:
            length = self.varint()  # (not self.at += ...: that would add to the position before it)
            self.at += length
        elif kind in (_LIST, _SET):
            size, elem = self.list_head()
            if elem in (_TRUE, _FALSE):
                self.at = self.at + size
            else:
                for _ in range(size):
                    self.skip(elem, depth + 1)
        elif kind == _MAP:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.skip(types >> 4, depth + 1)
                    self.skip(types & 0x0F, depth + 1)
        elif kind == _STRUCT:
            for _, field_kind in self.fields():
                self.skip(field_kind, depth + 1)
        else:
            raise _Bad(f"unknown field type {kind}")
        if self.at > len(self.data):
            raise _Bad("footer ends inside a value")

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise _Bad("footer ends early")
        value = self.data[self.at]
        self.at += 1
        return value

    def list_head(self) -> tuple[int, int]:
        head = self.byte()
        size = head >> 4
        if size == 15:
            size = self.varint()
        if size > len(self.data):
            raise _Bad("a list longer than the footer")
        return size, head & 0x0F

    def fields(self):
        """``(field id, type)`` of each field of the struct at hand; the caller reads or skips
        each value before asking for the next."""
        last = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == _STOP:
                return
            delta = head >> 4
            if delta:
                last += delta
            else:
                raw = self.varint()
                last = (raw >> 1) ^ -(raw & 1)
            yield last, kind


def footer_bytes(fd: int, size: int) -> bytes:
    """The footer of the Parquet file open at ``fd`` (``size`` bytes long)."""
    if size < 12:
        raise _Bad("file too short for a footer")
    tail = os.pread(fd, 8, size - 8)
    if len(tail) != 8 or tail[4:] != b"PAR1":
        raise _Bad("no footer")
    length = struct.unpack("<I", tail[:4])[0]
    if length > min(size - 12, MAX_FOOTER_BYTES):
        raise _Bad("footer longer than the file")
    data = os.pread(fd, length, size - 8 - length)
    if len(data) != length:
        raise _Bad("footer cut short")
    return data


def unsafe_chunks(data: bytes, levels: list[tuple[int, int]]) -> str | None:
    """What would make Arrow abort while building column-chunk metadata, or None.

    Parameters
    ----------
    data : bytes
        The footer (FileMetaData, Thrift compact protocol).
    levels : list of (int, int)
        Per leaf column of the schema, its maximum (definition, repetition) levels.
    """
    reader = _Reader(data)
    try:
        for field_id, kind in reader.fields():
            if field_id == 4 and kind == _LIST:  # row_groups
                size, elem = reader.list_head()
                for group in range(size):
                    if elem != _STRUCT:
                        return "row groups that are not structs"
                    problem = _row_group(reader, levels, group)
                    if problem:
                        return problem
            else:
                reader.skip(kind)
    except _Bad as exc:
        return str(exc)
    return None


def _row_group(reader: _Reader, levels, group: int) -> str | None:
    for field_id, kind in reader.fields():
        if field_id == 1 and kind == _LIST:  # columns
            size, elem = reader.list_head()
            if size != len(levels):
                return f"row group {group} has {size} column chunks for {len(levels)} columns"
            for column in range(size):
                if elem != _STRUCT:
                    return "column chunks that are not structs"
                problem = _column_chunk(reader, levels[column])
                if problem:
                    return f"row group {group}, column {column}: {problem}"
        else:
            reader.skip(kind)
    return None


def _column_chunk(reader: _Reader, level: tuple[int, int]) -> str | None:
    problem = None
    for field_id, kind in reader.fields():
        if field_id in (8, 9):  # crypto_metadata, encrypted_column_metadata
            problem = problem or "encrypted column metadata"
            reader.skip(kind)
        elif field_id == 3 and kind == _STRUCT:  # meta_data
            problem = _column_metadata(reader, level) or problem
        else:
            reader.skip(kind)
    return problem


def _column_metadata(reader: _Reader, level: tuple[int, int]) -> str | None:
    problem = None
    for field_id, kind in reader.fields():
        if field_id == 16 and kind == _STRUCT:  # size_statistics
            for stat_id, stat_kind in reader.fields():
                if stat_id in (2, 3) and stat_kind == _LIST:
                    size, elem = reader.list_head()
                    for _ in range(size):
                        reader.skip(elem)
                    expected = (level[1] if stat_id == 2 else level[0]) + 1
                    if size and size != expected:
                        name = "repetition" if stat_id == 2 else "definition"
                        problem = problem or (f"size statistics with a {name}-level histogram of "
                                              f"{size} entries where the schema allows {expected}")
                else:
                    reader.skip(stat_kind)
        else:
            reader.skip(kind)
    return problem
