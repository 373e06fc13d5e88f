"""Read a TensorFlow checkpoint ("tensor bundle", TF 1.x ``Saver`` and TF 2) without TensorFlow.

A checkpoint ``prefix`` is two or more files:

- ``prefix.index``: a LevelDB-style SSTable mapping each tensor name to a ``BundleEntryProto``
  (dtype, shape, shard, offset, size); the empty key holds the ``BundleHeaderProto`` (number of shards,
  endianness). The table is a sequence of blocks, each followed by a 5-byte trailer (a compression byte,
  0 for none, and a masked CRC-32C); an index block lists the data blocks; a 48-byte footer at the end of
  the file locates the index block and ends with the table's magic number. Keys inside a block are
  prefix-compressed against the previous key (``shared``, ``non_shared``, ``value_length`` varints).
- ``prefix.data-00000-of-0000N``: the tensors as raw bytes, little-endian, row-major.

The protobuf messages are decoded by hand (varints and length-delimited fields), so neither protobuf nor
tensorflow is needed. Checksums are not verified (pure-Python CRC-32C over megabytes would be slow);
every structural inconsistency (bad magic, truncated block, unknown compression, an entry whose byte
size disagrees with its shape and dtype, a short data file) raises :class:`zslkit.errors.DataError`
naming the file.

>>> tensors = read_checkpoint("/path/to/model/")          # doctest: +SKIP
>>> tensors["dense/kernel"].shape                         # doctest: +SKIP
(1506, 200)
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ...errors import DataError

__all__ = ["read_checkpoint", "read_index", "TABLE_MAGIC"]

#: the last 8 bytes of every LevelDB/TensorFlow table file (little-endian fixed64)
TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48  # two block handles padded to 40 bytes, then the magic

#: TensorFlow's ``DataType`` enum -> numpy dtype (little-endian); strings and resources are not supported
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2",
           19: "<f2", 22: "<u4", 23: "<u8"}


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``: ``(value, next position)``."""
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise DataError(f"{where}: truncated or malformed varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes, where: str):
    """Yield ``(field number, wire type, value)`` of one protobuf message: ints for varint and fixed
    fields, bytes for length-delimited ones."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, where)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, where)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise DataError(f"{where}: truncated fixed64 field {field}")
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos, where)
            if pos + n > len(buf):
                raise DataError(f"{where}: truncated length-delimited field {field}")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise DataError(f"{where}: truncated fixed32 field {field}")
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise DataError(f"{where}: unsupported protobuf wire type {wire} (field {field})")
        yield field, wire, value


def _signed(v: int) -> int:
    """A protobuf int32/int64 read as a varint: two's complement over 64 bits."""
    return v - (1 << 64) if v >= 1 << 63 else v


def _shape(buf: bytes, where: str) -> tuple[int, ...]:
    """``TensorShapeProto``: repeated ``dim`` (field 2, each ``size`` = field 1), ``unknown_rank`` (3)."""
    dims = []
    for field, _, value in _fields(buf, where):
        if field == 2:
            size = next((_signed(v) for f, _, v in _fields(value, where) if f == 1), 0)
            dims.append(size)
        elif field == 3 and value:
            raise DataError(f"{where}: a tensor of unknown rank")
    if any(d < 0 for d in dims):
        raise DataError(f"{where}: a tensor of unknown size {dims}")
    return tuple(dims)


def _entry(buf: bytes, where: str) -> dict:
    """``BundleEntryProto``: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6, slices 7."""
    e = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "sliced": False}
    for field, _, value in _fields(buf, where):
        if field == 1:
            e["dtype"] = value
        elif field == 2:
            e["shape"] = _shape(value, where)
        elif field in (3, 4, 5):
            e[{3: "shard_id", 4: "offset", 5: "size"}[field]] = _signed(value)
        elif field == 7:
            e["sliced"] = True
    return e


def _block(data: bytes, offset: int, size: int, path: Path) -> bytes:
    """The contents of the block at ``offset`` (its trailer checked for compression)."""
    if offset < 0 or size < 0 or offset + size + 5 > len(data):
        raise DataError(f"{path}: a block at byte {offset} (+{size} and a 5-byte trailer) runs past the end of "
                        f"the file ({len(data)} bytes): truncated or corrupt checkpoint index")
    kind = data[offset + size]
    if kind != 0:
        raise DataError(f"{path}: block at byte {offset} is compressed (type {kind}; 1 is snappy); TensorFlow "
                        "bundles are written uncompressed and this reader reads only those")
    return data[offset:offset + size]


def _block_entries(block: bytes, path: Path):
    """Yield ``(key, value)`` of one table block, undoing the keys' prefix compression."""
    where = f"{path}: block"
    if len(block) < 4:
        raise DataError(f"{where} of {len(block)} bytes is too short")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise DataError(f"{where}: {n_restarts} restart points do not fit in {len(block)} bytes")
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos, where)
        non_shared, pos = _varint(block, pos, where)
        n_value, pos = _varint(block, pos, where)
        if shared > len(key) or pos + non_shared + n_value > end:
            raise DataError(f"{where}: malformed entry at byte {pos}")
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        yield key, block[pos:pos + n_value]
        pos += n_value


def read_index(prefix: str | os.PathLike) -> tuple[dict, dict[str, dict]]:
    """Read ``prefix.index``.

    Parameters
    ----------
    prefix : str or path-like
        The checkpoint prefix (``prefix.index`` is read). For a checkpoint saved as ``folder/`` the prefix
        is ``folder/`` and the files are ``folder/.index`` and ``folder/.data-00000-of-00001``.

    Returns
    -------
    header : dict
        ``{"num_shards": int, "endianness": int}`` (0: little-endian).
    entries : dict of str to dict
        Tensor name -> ``{"dtype", "shape", "shard_id", "offset", "size", "sliced"}`` (dtype as TensorFlow's
        ``DataType`` number), in the table's (sorted) order.

    Raises
    ------
    zslkit.errors.DataError
        The index is missing, truncated or malformed (the message names the file).
    """
    path = Path(str(prefix) + ".index")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the checkpoint index ({e.strerror or e})") from None
    if len(data) < _FOOTER or int.from_bytes(data[-8:], "little") != TABLE_MAGIC:
        raise DataError(f"{path}: not a TensorFlow checkpoint index (no table magic in the last 8 bytes of "
                        f"{len(data)}): truncated or corrupt")
    footer = data[-_FOOTER:]
    where = f"{path}: footer"
    _, pos = _varint(footer, 0, where)  # metaindex handle (unused: bundles write no filter)
    _, pos = _varint(footer, pos, where)
    index_offset, pos = _varint(footer, pos, where)
    index_size, pos = _varint(footer, pos, where)
    header = {"num_shards": 1, "endianness": 0}
    entries: dict[str, dict] = {}
    for _, handle in _block_entries(_block(data, index_offset, index_size, path), path):
        offset, p = _varint(handle, 0, f"{path}: block handle")
        size, _ = _varint(handle, p, f"{path}: block handle")
        for key, value in _block_entries(_block(data, offset, size, path), path):
            if key == b"":
                for field, _, v in _fields(value, f"{path}: header"):
                    if field in (1, 2):
                        header[{1: "num_shards", 2: "endianness"}[field]] = v
                continue
            name = key.decode("utf-8", errors="replace")
            entries[name] = _entry(value, f"{path}: entry {name!r}")
    return header, entries


def read_checkpoint(prefix: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a TensorFlow checkpoint, by name.

    Parameters
    ----------
    prefix : str or path-like
        The checkpoint prefix: ``prefix.index`` and ``prefix.data-SSSSS-of-NNNNN`` are read.

    Returns
    -------
    dict of str to numpy.ndarray
        Tensor name (``"conv2d/kernel"``) -> array in TensorFlow's shape and dtype (native byte
        order): the stored bytes, unchanged.

    Raises
    ------
    zslkit.errors.DataError
        A file is missing, truncated or malformed, the bundle is big-endian, or a tensor has a dtype
        this reader does not decode (strings, resources) or is stored in slices.
    """
    index = Path(str(prefix) + ".index")
    header, entries = read_index(prefix)
    if header["endianness"] != 0:
        raise DataError(f"{index}: a big-endian checkpoint; only little-endian bundles are read")
    n_shards = header["num_shards"]
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for name, e in entries.items():
        if e["sliced"]:
            raise DataError(f"{index}: tensor {name!r} is stored in slices (a partitioned variable), not read")
        if e["dtype"] not in _DTYPES:
            raise DataError(f"{index}: tensor {name!r} has TensorFlow dtype {e['dtype']}, which this reader "
                            f"does not decode (numeric dtypes only)")
        dtype = np.dtype(_DTYPES[e["dtype"]])
        n = int(np.prod(e["shape"], dtype=np.int64))
        if n * dtype.itemsize != e["size"]:
            raise DataError(f"{index}: tensor {name!r} of shape {e['shape']} and dtype {dtype} needs "
                            f"{n * dtype.itemsize} bytes, the index says {e['size']}")
        shard = e["shard_id"]
        if shard not in shards:
            if not 0 <= shard < n_shards:
                raise DataError(f"{index}: tensor {name!r} names shard {shard} of {n_shards}")
            data_path = Path(f"{prefix}.data-{shard:05d}-of-{n_shards:05d}")
            try:
                shards[shard] = data_path.read_bytes()
            except OSError as err:
                raise DataError(f"{data_path}: cannot read the checkpoint data ({err.strerror or err})") from None
        buf = shards[shard]
        if e["offset"] < 0 or e["offset"] + e["size"] > len(buf):
            raise DataError(f"{prefix}.data-{shard:05d}-of-{n_shards:05d}: tensor {name!r} at bytes "
                            f"{e['offset']}..{e['offset'] + e['size']} runs past the end ({len(buf)} bytes)")
        arr = np.frombuffer(buf, dtype=dtype, count=n, offset=e["offset"]).reshape(e["shape"])
        out[name] = arr.astype(dtype.newbyteorder("="), copy=True)
    return out
