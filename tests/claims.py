"""Rewrite what a file *claims* about itself: the row counts and sizes in a Parquet footer, the
shape in a ``.npy`` header inside an NPZ archive, the sizes in a zip directory.

The hardening corpus and the fuzzer use these to build files that are small on disk but claim to
hold far more (or other) data than they do. The Parquet footer is Thrift's compact protocol; the
codec here is generic (a struct is a list of ``[field id, type, value]``), so any integer of the
footer can be rewritten and the footer written back with a correct length.

>>> footer = read_footer(parquet_bytes)                                # doctest: +SKIP
>>> set_ints(footer, FILE_NUM_ROWS, 10**12)                            # doctest: +SKIP
>>> damaged = write_footer(parquet_bytes, footer)                      # doctest: +SKIP
"""

from __future__ import annotations

import ast
import io
import struct
import zipfile
from collections.abc import Callable, Iterator

# --- Thrift compact protocol --------------------------------------------------------------------

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
INTS = (BYTE, I16, I32, I64)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _unzigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63) if value < 0 else value << 1


def _put_varint(out: bytearray, value: int) -> None:
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _read_value(data: bytes, at: int, kind: int):
    if kind in (TRUE, FALSE):
        return kind == TRUE, at
    if kind == BYTE:
        return struct.unpack_from("<b", data, at)[0], at + 1
    if kind in (I16, I32, I64):
        raw, at = _varint(data, at)
        return _zigzag(raw), at
    if kind == DOUBLE:
        return struct.unpack_from("<d", data, at)[0], at + 8
    if kind == BINARY:
        size, at = _varint(data, at)
        return bytes(data[at:at + size]), at + size
    if kind in (LIST, SET):
        head = data[at]
        at += 1
        size, elem = head >> 4, head & 0x0F
        if size == 15:
            size, at = _varint(data, at)
        items = []
        for _ in range(size):
            if elem in (TRUE, FALSE):  # booleans in a list: one byte each
                items.append(data[at] == 1)
                at += 1
            else:
                item, at = _read_value(data, at, elem)
                items.append(item)
        return [elem, items], at
    if kind == MAP:
        size, at = _varint(data, at)
        if not size:
            return [0, 0, []], at
        types = data[at]
        at += 1
        pairs = []
        for _ in range(size):
            key, at = _read_value(data, at, types >> 4)
            value, at = _read_value(data, at, types & 0x0F)
            pairs.append([key, value])
        return [types >> 4, types & 0x0F, pairs], at
    if kind == STRUCT:
        return _read_struct(data, at)
    raise ValueError(f"unknown compact type {kind}")


def _read_struct(data: bytes, at: int) -> tuple[list, int]:
    fields: list = []
    last = 0
    while True:
        head = data[at]
        at += 1
        kind = head & 0x0F
        if kind == STOP:
            return fields, at
        delta = head >> 4
        if delta:
            field_id = last + delta
        else:
            raw, at = _varint(data, at)
            field_id = _zigzag(raw)
        value, at = _read_value(data, at, kind)
        fields.append([field_id, kind, value])
        last = field_id


def _write_value(out: bytearray, kind: int, value) -> None:
    if kind in (TRUE, FALSE):
        return
    if kind == BYTE:
        out += struct.pack("<b", value)
    elif kind in (I16, I32, I64):
        _put_varint(out, _unzigzag(value))
    elif kind == DOUBLE:
        out += struct.pack("<d", value)
    elif kind == BINARY:
        _put_varint(out, len(value))
        out += value
    elif kind in (LIST, SET):
        elem, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | elem)
        else:
            out.append(0xF0 | elem)
            _put_varint(out, len(items))
        for item in items:
            if elem in (TRUE, FALSE):
                out.append(1 if item else 2)
            else:
                _write_value(out, elem, item)
    elif kind == MAP:
        key_type, value_type, pairs = value
        _put_varint(out, len(pairs))
        if pairs:
            out.append(key_type << 4 | value_type)
            for key, item in pairs:
                _write_value(out, key_type, key)
                _write_value(out, value_type, item)
    elif kind == STRUCT:
        _write_struct(out, value)
    else:
        raise ValueError(f"unknown compact type {kind}")


def _write_struct(out: bytearray, fields: list) -> None:
    last = 0
    for field_id, kind, value in fields:
        if kind in (TRUE, FALSE):
            kind = TRUE if value else FALSE
        delta = field_id - last
        if 0 < delta <= 15:
            out.append(delta << 4 | kind)
        else:
            out.append(kind)
            _put_varint(out, _unzigzag(field_id))
        _write_value(out, kind, value)
        last = field_id
    out.append(STOP)


def read_footer(data: bytes) -> list:
    """The FileMetaData struct of a Parquet file's bytes."""
    if data[-4:] != b"PAR1":
        raise ValueError("no Parquet footer")
    length = struct.unpack("<I", data[-8:-4])[0]
    fields, _ = _read_struct(data, len(data) - 8 - length)
    return fields


def write_footer(data: bytes, footer: list) -> bytes:
    """``data`` with its footer replaced by ``footer`` (length and magic rewritten)."""
    length = struct.unpack("<I", data[-8:-4])[0]
    body = data[: len(data) - 8 - length]
    out = bytearray()
    _write_struct(out, footer)
    return body + bytes(out) + struct.pack("<I", len(out)) + b"PAR1"


# Paths of integer fields in parquet.thrift, as (field id, ...) from FileMetaData.
FILE_NUM_ROWS = (3,)
ROW_GROUP_NUM_ROWS = (4, "*", 3)
ROW_GROUP_BYTES = (4, "*", 2)
COLUMN_NUM_VALUES = (4, "*", 1, "*", 3, 5)
COLUMN_UNCOMPRESSED = (4, "*", 1, "*", 3, 6)
COLUMN_COMPRESSED = (4, "*", 1, "*", 3, 7)
COLUMN_DATA_OFFSET = (4, "*", 1, "*", 3, 9)
SCHEMA_NUM_CHILDREN = (2, "*", 5)
CLAIMS = {
    "file rows": FILE_NUM_ROWS,
    "row-group rows": ROW_GROUP_NUM_ROWS,
    "row-group bytes": ROW_GROUP_BYTES,
    "column values": COLUMN_NUM_VALUES,
    "column uncompressed bytes": COLUMN_UNCOMPRESSED,
    "column compressed bytes": COLUMN_COMPRESSED,
    "column data offset": COLUMN_DATA_OFFSET,
    "schema children": SCHEMA_NUM_CHILDREN,
}


def _walk(node, path: tuple) -> Iterator[list]:
    """The ``[field id, type, value]`` entries at ``path`` ("*" = every element of a list)."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node[1]:
            yield from _walk(item, rest)
        return
    for entry in node:
        if entry[0] == head:
            if not rest:
                yield entry
            elif entry[1] == LIST and rest[0] == "*":
                yield from _walk(entry[2], rest)
            elif entry[1] == STRUCT:
                yield from _walk(entry[2], rest)


def set_ints(footer: list, path: tuple, value: int | Callable[[int], int]) -> int:
    """Set every integer at ``path`` to ``value`` (or ``value(old)``); returns how many."""
    count = 0
    for entry in _walk(footer, path):
        if entry[1] in INTS:
            entry[2] = value(entry[2]) if callable(value) else value
            count += 1
    return count


def all_ints(node, out: list | None = None) -> list[list]:
    """Every integer entry of the footer (for mutating one at random)."""
    out = [] if out is None else out
    for entry in node:
        kind, value = entry[1], entry[2]
        if kind in INTS:
            out.append(entry)
        elif kind == STRUCT:
            all_ints(value, out)
        elif kind in (LIST, SET) and value[0] == STRUCT:
            for item in value[1]:
                all_ints(item, out)
    return out


def claim_parquet(data: bytes, path: tuple, value) -> bytes:
    footer = read_footer(data)
    set_ints(footer, path, value)
    return write_footer(data, footer)


# --- NPZ: the .npy header inside a member, and the zip directory's sizes -------------------------


def npy_header(member: bytes) -> tuple[dict, int, int]:
    """``(header dict, where the dict starts, where the data starts)`` of a .npy file's bytes."""
    major = member[6]
    if major == 1:
        size, start = struct.unpack_from("<H", member, 8)[0], 10
    else:
        size, start = struct.unpack_from("<I", member, 8)[0], 12
    text = member[start:start + size].decode("latin1")
    return ast.literal_eval(text), start, start + size


def with_npy_header(member: bytes, header: dict) -> bytes:
    """The .npy bytes with another header dict (version 1 or 2 as needed), data unchanged."""
    _, _, data_at = npy_header(member)
    text = repr(header)
    for major, prefix in ((1, 10), (2, 12)):
        total = prefix + len(text) + 1
        pad = (-total) % 64
        body = (text + " " * pad + "\n").encode("latin1")
        if major == 1 and len(body) > 0xFFFF:
            continue
        size = struct.pack("<H", len(body)) if major == 1 else struct.pack("<I", len(body))
        return b"\x93NUMPY" + bytes([major, 0]) + size + body + member[data_at:]
    raise AssertionError("unreachable")


def rebuild_npz(data: bytes, change: Callable[[str, bytes], bytes], *,
                compression: int = zipfile.ZIP_STORED) -> bytes:
    """The archive with each member passed through ``change(name, bytes)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", compression) as sink:
        for info in source.infolist():
            sink.writestr(info.filename, change(info.filename, source.read(info.filename)))
    return out.getvalue()


def claim_npy_shape(data: bytes, member: str, shape: tuple, **kwargs) -> bytes:
    """The NPZ with ``member``'s .npy header claiming ``shape`` (the data is left as it was)."""

    def change(name: str, blob: bytes) -> bytes:
        if name != member:
            return blob
        header, _, _ = npy_header(blob)
        return with_npy_header(blob, {**header, "shape": tuple(shape)})

    return rebuild_npz(data, change, **kwargs)


def claim_zip_sizes(data: bytes, *, file_size: int | None = None,
                    compress_size: int | None = None, member: str | None = None) -> bytes:
    """Rewrite the sizes the zip directory (central and local headers) claims for members."""
    out = bytearray(data)
    for signature, at_sizes, name_at in ((b"PK\x01\x02", 20, 46), (b"PK\x03\x04", 18, 30)):
        at = out.find(signature)
        while at >= 0:
            length = struct.unpack_from("<H", out, at + (28 if signature == b"PK\x01\x02" else 26))[0]
            name = bytes(out[at + name_at:at + name_at + length]).decode("utf-8", "replace")
            if member is None or name == member:
                if compress_size is not None:
                    struct.pack_into("<I", out, at + at_sizes, compress_size & 0xFFFFFFFF)
                if file_size is not None:
                    struct.pack_into("<I", out, at + at_sizes + 4, file_size & 0xFFFFFFFF)
            at = out.find(signature, at + 4)
    return bytes(out)
