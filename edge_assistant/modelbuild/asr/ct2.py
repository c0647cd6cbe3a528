"""Read a CTranslate2 ``model.bin`` into numpy arrays (no ctranslate2 needed).

Layout (little endian, as written by CTranslate2's ``ModelSpec._serialize``, binary versions 4-6):

    u32 binary_version
    str spec_name            str = u16 byte length (including a trailing NUL) + UTF-8 bytes + NUL
    u32 spec_revision
    u32 n_variables
    n_variables x { str name; u8 rank; u32 dims[rank]; u8 dtype_id; u32 n_bytes; bytes[n_bytes] }
    u32 n_aliases
    n_aliases x { str alias; str target_name }

dtype ids: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16. Aliases name a variable that the
converter found equal to another one (e.g. a tied output projection); :meth:`CT2Model.get` resolves them.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_assistant.core.errors import ModelFileError

log = logging.getLogger(__name__)

SUPPORTED_BINARY_VERSIONS = (4, 5, 6)
_MAX_STRING_BYTES = 4096
_MAX_RANK = 8

_DTYPES: dict[int, str] = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


@dataclass(frozen=True)
class CT2Model:
    """The variables of one CTranslate2 model file."""

    path: Path
    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """All variable names, aliases included, sorted."""
        return sorted(set(self.variables) | set(self.aliases))

    def __contains__(self, name: object) -> bool:
        return name in self.variables or name in self.aliases

    def get(self, name: str, dtype: str | None = "float32") -> np.ndarray:
        """The variable ``name`` (aliases resolved), converted to ``dtype`` (None keeps the stored one)."""
        seen = [name]
        while name in self.aliases:
            name = self.aliases[name]
            if name in seen:
                raise ModelFileError(self.path, f"alias cycle {' -> '.join(seen + [name])}")
            seen.append(name)
        try:
            value = self.variables[name]
        except KeyError:
            raise ModelFileError(self.path, f"no variable {seen[0]!r} (spec {self.spec_name})") from None
        return value if dtype is None else value.astype(dtype)

    def scalar(self, name: str) -> int | float:
        """A rank-0 variable (e.g. ``encoder/num_heads``) as a Python number."""
        value = self.get(name, dtype=None)
        if value.size != 1:
            raise ModelFileError(self.path, f"variable {name!r} has shape {value.shape}; expected a scalar")
        return value.reshape(()).item()


class _Cursor:
    """Bounds-checked reads over the file's bytes; every failure names the offset and the field."""

    def __init__(self, path: Path, data: memoryview) -> None:
        self.path = path
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelFileError(
                self.path,
                f"truncated at byte {self.pos} reading {what}: need {n} bytes, {len(self.data) - self.pos} left",
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return struct.unpack("<H", self.take(2, what))[0]

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def string(self, what: str) -> str:
        n = self.u16(f"length of {what}")
        if n == 0 or n > _MAX_STRING_BYTES:
            raise ModelFileError(self.path, f"byte {self.pos - 2}: {what} length {n} out of range 1..{_MAX_STRING_BYTES}")
        raw = bytes(self.take(n, what))
        if raw[-1] != 0:
            raise ModelFileError(self.path, f"byte {self.pos - 1}: {what} is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelFileError(self.path, f"byte {self.pos - n}: {what} is not UTF-8 ({exc})") from None


def read_ct2_model(path: str | Path) -> CT2Model:
    """Parse ``model.bin``; raise :class:`ModelFileError` naming the offset on a truncated or corrupt file."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(path, f"cannot read: {exc.strerror or exc}") from None
    cur = _Cursor(path, memoryview(blob))
    version = cur.u32("binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ModelFileError(
            path, f"binary version {version} not supported (expected one of {SUPPORTED_BINARY_VERSIONS})"
        )
    spec_name = cur.string("spec name")
    revision = cur.u32("spec revision")
    n_vars = cur.u32("variable count")
    variables: dict[str, np.ndarray] = {}
    for index in range(n_vars):
        name = cur.string(f"name of variable #{index}")
        rank = cur.u8(f"rank of {name!r}")
        if rank > _MAX_RANK:
            raise ModelFileError(path, f"variable {name!r}: rank {rank} > {_MAX_RANK}; file corrupt")
        shape = tuple(cur.u32(f"dim {d} of {name!r}") for d in range(rank))
        dtype_id = cur.u8(f"dtype of {name!r}")
        if dtype_id not in _DTYPES:
            raise ModelFileError(path, f"variable {name!r}: unknown dtype id {dtype_id} (expected 0..5)")
        n_bytes = cur.u32(f"byte count of {name!r}")
        dtype_name = _DTYPES[dtype_id]
        item = 2 if dtype_name == "bfloat16" else np.dtype(dtype_name).itemsize
        expected = int(np.prod(shape, dtype=np.int64)) * item
        if n_bytes != expected:
            raise ModelFileError(
                path, f"variable {name!r}: {n_bytes} bytes for shape {shape} {dtype_name}; expected {expected}"
            )
        raw = cur.take(n_bytes, f"data of {name!r}")
        if dtype_name == "bfloat16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32).reshape(shape)
        else:
            array = np.frombuffer(raw, dtype=np.dtype(dtype_name).newbyteorder("<")).reshape(shape)
        if name in variables:
            raise ModelFileError(path, f"variable {name!r} appears twice")
        variables[name] = array
    n_alias = cur.u32("alias count")
    aliases: dict[str, str] = {}
    for index in range(n_alias):
        alias = cur.string(f"alias #{index}")
        target = cur.string(f"target of alias {alias!r}")
        aliases[alias] = target
    if cur.pos != len(blob):
        raise ModelFileError(path, f"{len(blob) - cur.pos} unexpected trailing bytes after the alias table")
    for alias, target in aliases.items():
        if target not in variables and target not in aliases:
            raise ModelFileError(path, f"alias {alias!r} points to unknown variable {target!r}")
    log.debug("%s: %s rev %d, %d variables, %d aliases", path, spec_name, revision, len(variables), len(aliases))
    return CT2Model(path, version, spec_name, revision, variables, aliases)
