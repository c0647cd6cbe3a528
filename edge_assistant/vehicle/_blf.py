"""A bounded reader of Vector BLF (binary logging format) CAN logs, used by :mod:`edge_assistant.vehicle.logs`.

Why not python-can's ``BLFReader``: on hostile input it can run forever or without a memory bound. An
inner object of size 0 makes it yield the same frame forever (or, with an unknown header version, loop
without yielding); a zlib container is inflated without a limit (a few kB can announce a gigabyte); an
object announcing more bytes than its container holds keeps every following container in memory, joined
again for each one (quadratic time). Here every size is checked before it is used:

* the file header is :data:`FILE_HEADER.size` to :data:`MAX_HEADER_BYTES` bytes;
* a top-level object (a log container) is at most :data:`MAX_CONTAINER_BYTES` on disk and inflates to at
  most :data:`MAX_CONTAINER_BYTES`;
* an inner object (a frame) is at least its own header and at most :data:`MAX_OBJECT_BYTES`, so the bytes
  carried from one container to the next are bounded and every step moves forward.

Anything else stops the file with a :class:`DataFormatError` naming the file and the byte offset, after the
frames read so far. Frame types read: CAN (1, 86), CAN error (73), CAN FD (100, 101); others are skipped.
"""

from __future__ import annotations

import datetime
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from edge_assistant.core.errors import DataFormatError

#: "LOGG", header size, application and format versions, file size, uncompressed size, object counts,
#: start and stop time (Windows SYSTEMTIME: year, month, weekday, day, hour, minute, second, ms).
FILE_HEADER = struct.Struct("<4sL8BQQLL8H8H")
OBJ_BASE = struct.Struct("<4sHHLL")     # "LOBJ", header size, header version, object size, object type
OBJ_V1 = struct.Struct("<LHHQ")         # flags (time unit), client index, object version, time
OBJ_V2 = struct.Struct("<LBxHQ8x")      # flags, time status, object version, time, original time
CONTAINER = struct.Struct("<H6xL4x")    # compression method, uncompressed size
CAN_MSG = struct.Struct("<HBBL8s")      # channel, flags, dlc, id, data
CAN_ERROR_EXT = struct.Struct("<HHLBBBxLLH2x8s")  # channel, length, flags, ecc, position, dlc, frame length, id, ...
CAN_FD_MSG = struct.Struct("<HBBLLBBB5x64s")      # channel, flags, dlc, id, frame length, bits, FD flags, valid bytes
CAN_FD_MSG_64 = struct.Struct("<BBBBLLLLLLLHBBL")  # channel, dlc, valid bytes, tx count, id, ..., direction, ext offset

MAX_HEADER_BYTES = 64 * 1024
#: A container holds 128 KiB of objects when written by Vector tools or python-can; 16 MiB is far beyond that.
MAX_CONTAINER_BYTES = 16 * 1024 * 1024
#: The largest inner object read: a CAN FD frame is about 100 bytes; text or marker objects stay far below.
MAX_OBJECT_BYTES = 1024 * 1024

_LOG_CONTAINER = 10
_CAN_MESSAGE, _CAN_MESSAGE2, _CAN_ERROR_EXT, _CAN_FD_MESSAGE, _CAN_FD_MESSAGE_64 = 1, 86, 73, 100, 101
_NO_COMPRESSION, _ZLIB = 0, 2
_EXT_FLAG = 0x80000000
_FD_LENGTHS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)


def _systemtime(fields: tuple[int, ...]) -> float:
    """Seconds since the epoch of a SYSTEMTIME (0.0 when it is not a valid date, as Vector tools write)."""
    year, month, _weekday, day, hour, minute, second, ms = fields
    try:
        return datetime.datetime(year, month, day, hour, minute, second, ms * 1000,
                                 tzinfo=datetime.UTC).timestamp()
    except ValueError:
        return 0.0


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0

    def error(self, offset: int, reason: str) -> DataFormatError:
        return DataFormatError(f"{self.path} (byte {offset}, after frame {self.frames})", reason)

    def read(self) -> Iterator:
        with open(self.path, "rb") as fh:
            head = fh.read(FILE_HEADER.size)
            if len(head) < FILE_HEADER.size or head[:4] != b"LOGG":
                raise self.error(0, "not a BLF file (expected the 'LOGG' file header)")
            fields = FILE_HEADER.unpack(head)
            header_size = fields[1]
            if not FILE_HEADER.size <= header_size <= MAX_HEADER_BYTES:
                raise self.error(4, f"file header size {header_size}; expected {FILE_HEADER.size} to "
                                    f"{MAX_HEADER_BYTES} bytes")
            start_s = _systemtime(fields[14:22])
            fh.seek(header_size)
            carry = b""  # the start of an inner object continued in the next container
            carry_at = header_size
            while True:
                offset = fh.tell()
                base = fh.read(OBJ_BASE.size)
                if not base:
                    break
                if len(base) < OBJ_BASE.size:
                    raise self.error(offset, "truncated object header (file cut short?)")
                signature, _hsize, _hver, obj_size, obj_type = OBJ_BASE.unpack(base)
                if signature != b"LOBJ":
                    raise self.error(offset, f"expected an object ('LOBJ'), found {signature!r}")
                if not OBJ_BASE.size <= obj_size <= MAX_CONTAINER_BYTES:
                    raise self.error(offset, f"object size {obj_size}; expected {OBJ_BASE.size} to "
                                             f"{MAX_CONTAINER_BYTES} bytes")
                body = fh.read(obj_size - OBJ_BASE.size)
                truncated = len(body) < obj_size - OBJ_BASE.size
                fh.read(obj_size % 4)  # padding to 4 bytes
                if obj_type != _LOG_CONTAINER:
                    if truncated:
                        raise self.error(offset, "truncated object (file cut short?)")
                    continue
                data = self._inflate(body, offset)
                if not carry:
                    carry_at = offset
                data = carry + data
                used = yield from self._objects(data, start_s, carry_at)
                carry = data[used:]
                if len(carry) > MAX_OBJECT_BYTES:
                    raise self.error(carry_at, f"an object continues over more than {MAX_OBJECT_BYTES} bytes")
                if truncated:
                    raise self.error(offset, f"log container of {obj_size} bytes cut short at "
                                             f"{OBJ_BASE.size + len(body)} (file cut short?)")
            if carry.strip(b"\x00"):
                raise self.error(carry_at, f"the last object is incomplete ({len(carry)} bytes; file cut short?)")

    def _inflate(self, body: bytes, offset: int) -> bytes:
        if len(body) < CONTAINER.size:
            raise self.error(offset, "log container without its header (file cut short?)")
        method, _declared = CONTAINER.unpack_from(body)
        payload = body[CONTAINER.size:]
        if method == _NO_COMPRESSION:
            return payload
        if method != _ZLIB:
            raise self.error(offset, f"compression method {method}; expected 0 (none) or 2 (zlib)")
        z = zlib.decompressobj()
        try:
            data = z.decompress(payload, MAX_CONTAINER_BYTES + 1)
        except zlib.error as exc:
            raise self.error(offset, f"log container does not inflate: {exc}") from None
        if len(data) > MAX_CONTAINER_BYTES:
            raise self.error(offset, f"log container inflates to more than {MAX_CONTAINER_BYTES} bytes")
        return data

    def _objects(self, data: bytes, start_s: float, at: int):
        """Yield the frames of the complete inner objects in ``data``; return how many bytes they used."""
        import can

        pos = 0
        while True:
            found = data.find(b"LOBJ", pos, pos + 8)  # objects are padded to 4 (some writers: 8) bytes
            if found < 0:
                if not data[pos:].strip(b"\x00"):
                    return len(data)  # padding
                if len(data) - pos >= 8:
                    raise self.error(at, f"no object at byte {pos} of a log container")
                return pos  # the start of a signature continued in the next container
            if len(data) - found < OBJ_BASE.size:
                return found
            _sig, hsize, hver, obj_size, obj_type = OBJ_BASE.unpack_from(data, found)
            head = OBJ_V1 if hver == 1 else OBJ_V2 if hver == 2 else None
            need = OBJ_BASE.size + (head.size if head else 0)
            if not max(need, hsize) <= obj_size <= MAX_OBJECT_BYTES:
                raise self.error(at, f"inner object of {obj_size} bytes at byte {found} of a log container; "
                                     f"expected {max(need, hsize)} to {MAX_OBJECT_BYTES}")
            if found + obj_size > len(data):
                return found  # continued in the next container
            obj = data[found:found + obj_size]
            pos = found + obj_size
            if head is None or obj_type not in (_CAN_MESSAGE, _CAN_MESSAGE2, _CAN_ERROR_EXT, _CAN_FD_MESSAGE,
                                                _CAN_FD_MESSAGE_64):
                continue
            flags, _, _, ticks = head.unpack_from(obj, OBJ_BASE.size)  # flags 1: 10 us ticks, else 1 ns
            msg = self._message(can, obj[need:], obj_type, start_s + ticks * (1e-5 if flags == 1 else 1e-9))
            if msg is None:
                raise self.error(at, f"frame object of type {obj_type} at byte {found} is {obj_size} bytes, "
                                     "too short for its fields")
            self.frames += 1
            yield msg

    @staticmethod
    def _message(can, body: bytes, obj_type: int, t: float):
        """The ``can.Message`` of one frame object's ``body`` (after its headers); None if it is too short."""
        if obj_type in (_CAN_MESSAGE, _CAN_MESSAGE2):
            if len(body) < CAN_MSG.size:
                return None
            channel, flags, dlc, ident, data = CAN_MSG.unpack_from(body)
            return can.Message(timestamp=t, arbitration_id=ident & 0x1FFFFFFF, is_extended_id=bool(ident & _EXT_FLAG),
                               is_remote_frame=bool(flags & 0x80), is_rx=not flags & 1, dlc=min(dlc, 8),
                               data=data[:min(dlc, 8)], channel=channel - 1, check=False)
        if obj_type == _CAN_ERROR_EXT:
            if len(body) < CAN_ERROR_EXT.size:
                return None
            f = CAN_ERROR_EXT.unpack_from(body)
            channel, dlc, ident, data = f[0], min(f[5], 8), f[7], f[9]
            return can.Message(timestamp=t, is_error_frame=True, arbitration_id=ident & 0x1FFFFFFF,
                               is_extended_id=bool(ident & _EXT_FLAG), dlc=dlc, data=data[:dlc], channel=channel - 1,
                               check=False)
        if obj_type == _CAN_FD_MESSAGE:
            if len(body) < CAN_FD_MSG.size:
                return None
            channel, flags, dlc, ident, _, _, fd_flags, valid, data = CAN_FD_MSG.unpack_from(body)
            data = data[:min(valid, 64)]
            return can.Message(timestamp=t, arbitration_id=ident & 0x1FFFFFFF, is_extended_id=bool(ident & _EXT_FLAG),
                               is_remote_frame=bool(flags & 0x80), is_rx=not flags & 1, is_fd=bool(fd_flags & 1),
                               bitrate_switch=bool(fd_flags & 2), error_state_indicator=bool(fd_flags & 4),
                               dlc=len(data), data=data, channel=channel - 1, check=False)
        if len(body) < CAN_FD_MSG_64.size:
            return None
        f = CAN_FD_MSG_64.unpack_from(body)
        channel, valid, ident, fd_flags, direction = f[0], min(f[2], 64), f[4], f[6], f[12]
        data = body[CAN_FD_MSG_64.size:CAN_FD_MSG_64.size + valid].ljust(valid, b"\x00")  # short: zero-padded
        return can.Message(timestamp=t, arbitration_id=ident & 0x1FFFFFFF, is_extended_id=bool(ident & _EXT_FLAG),
                           is_remote_frame=bool(fd_flags & 0x10), is_fd=bool(fd_flags & 0x1000),
                           bitrate_switch=bool(fd_flags & 0x2000), error_state_indicator=bool(fd_flags & 0x4000),
                           is_rx=not direction, dlc=len(data), data=data, channel=channel - 1, check=False)


def read_blf(path: str | Path) -> Iterator:
    """Yield ``can.Message`` from a BLF file; raises DataFormatError naming the file and byte offset."""
    return _Reader(Path(path)).read()
