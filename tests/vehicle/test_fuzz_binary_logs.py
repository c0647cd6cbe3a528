"""BLF (our bounded reader) and python-can's ASC/TRC/CSV logs under hostile input.

Logs are written by python-can's own writers from frames of the real Tesla and Kona logs (there are no
real BLF/ASC/TRC files in ``../shared/data``) and from generated frames, then damaged: sizes patched to
0 or 4 GB, zlib bombs, unknown header versions, random bit flips, inserts and cuts. Any file gives frames
that could be real or a DataFormatError naming the file, in bounded time and memory. A few hundred
examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import math
import os
import random
import struct
import zlib
from itertools import islice
from pathlib import Path

import can
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import DataFormatError, EdgeAssistantError
from edge_assistant.vehicle import _blf
from edge_assistant.vehicle.logs import LogStats, read_log

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))
FILE_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])
#: More frames than any test file can hold: a reader that yields this many is running away.
RUNAWAY_FRAMES = 200_000


def _key(m: can.Message) -> tuple:
    return (round(m.timestamp, 6), m.arbitration_id, m.is_extended_id, m.is_remote_frame, m.is_error_frame, m.is_fd,
            m.bitrate_switch, m.error_state_indicator, bytes(m.data), m.channel, m.is_rx)


def _write(path: Path, frames: list[can.Message]) -> Path:
    with can.Logger(str(path)) as writer:
        for m in frames:
            writer.on_message_received(m)
    return path


def _check_frames(path: Path) -> list[can.Message]:
    """Read ``path`` to the end: possible frames, or a project error naming the file; never a runaway."""
    stats = LogStats()
    frames: list[can.Message] = []
    try:
        for m in read_log(path, stats):
            frames.append(m)
            assert len(frames) < RUNAWAY_FRAMES, f"{path}: the reader is running away"
    except EdgeAssistantError as exc:
        assert str(path) in str(exc)
        return frames
    for m in frames:
        assert math.isfinite(m.timestamp)
        assert 0 <= m.arbitration_id <= (0x1FFFFFFF if m.is_extended_id or m.is_error_frame else 0x7FF)
        assert len(m.data) <= 64
    assert stats.frames == len(frames)
    return frames


_FRAME = st.builds(
    lambda t, kind, ext, ident, data, brs, rx: can.Message(
        timestamp=t, arbitration_id=ident & (0x1FFFFFFF if ext else 0x7FF), is_extended_id=ext,
        is_fd=kind == "fd", bitrate_switch=brs and kind == "fd", is_remote_frame=kind == "remote",
        is_error_frame=kind == "error", is_rx=rx, channel=0,
        data=(data if kind == "fd" else data[:8]) if kind != "remote" else b"", dlc=0 if kind == "remote" else None),
    st.integers(1_600_000_000_000, 1_700_000_000_000).map(lambda ms: ms / 1000), st.sampled_from(
        ["classic", "classic", "fd", "remote", "error"]), st.booleans(), st.integers(0, 0x1FFFFFFF),
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)), st.booleans(), st.booleans())


@FILE_SETTINGS
@given(frames=st.lists(_FRAME, max_size=40).map(lambda fs: sorted(fs, key=lambda m: m.timestamp)),
       level=st.sampled_from([-1, 0]))
def test_blf_reads_what_python_can_writes_as_python_can_reads_it(tmp_path, frames, level: int) -> None:
    path = tmp_path / "round.blf"
    with can.BLFWriter(str(path), compression_level=level) as writer:
        for m in frames:
            writer.on_message_received(m)
    ours = _check_frames(path)
    assert [_key(m) for m in ours] == [_key(m) for m in can.BLFReader(str(path))]
    assert len(ours) == len(frames)


def _container(inner: bytes, method: int = 0) -> bytes:
    data = zlib.compress(inner) if method == 2 else inner
    body = _blf.CONTAINER.pack(method, len(inner)) + data
    size = _blf.OBJ_BASE.size + len(body)
    return _blf.OBJ_BASE.pack(b"LOBJ", 16, 1, size, 10) + body + b"\x00" * (size % 4)


def _can_object(size: int | None = None, version: int = 1, ident: int = 0x123) -> bytes:
    head = _blf.OBJ_V1.pack(1, 0, 0, 100) if version == 1 else _blf.OBJ_V2.pack(1, 0, 0, 100)
    body = head + _blf.CAN_MSG.pack(1, 0, 2, ident, b"\x01\x02" + b"\x00" * 6)
    hsize = _blf.OBJ_BASE.size + len(head)
    return _blf.OBJ_BASE.pack(b"LOBJ", hsize, version, len(body) + 16 if size is None else size, 1) + body


def _blf_file(*containers: bytes) -> bytes:
    header = _blf.FILE_HEADER.pack(b"LOGG", 144, *([0] * 8), 0, 0, 0, 0, *([0] * 16))
    return header.ljust(144, b"\x00") + b"".join(containers)


#: Hostile variants of one field: sizes at and around the limits.
_SIZE = st.one_of(st.sampled_from([0, 1, 15, 16, 31, 32, 47, 48, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]),
                  st.integers(0, 0xFFFFFFFF))


@FILE_SETTINGS
@given(sizes=st.lists(st.none() | _SIZE, min_size=1, max_size=6), versions=st.lists(st.sampled_from([1, 2, 0, 3, 0xFFFF]),
                                                                                    min_size=6, max_size=6),
       method=st.sampled_from([0, 2, 1, 0xFFFF]), split=st.integers(0, 400), cut=st.integers(0, 40))
def test_blf_with_hostile_sizes_gives_frames_or_named_errors(tmp_path, sizes, versions, method: int, split: int,
                                                             cut: int) -> None:
    inner = b"".join(_can_object(s, v) for s, v in zip(sizes, versions, strict=False))
    # two containers, an object possibly split across them; the file possibly cut short
    blob = _blf_file(_container(inner[:split], method), _container(inner[split:], method))
    path = tmp_path / "hostile.blf"
    path.write_bytes(blob[:len(blob) - cut])
    _check_frames(path)


@FILE_SETTINGS
@given(outer=_SIZE, header=_SIZE)
def test_blf_with_hostile_outer_sizes_gives_named_errors(tmp_path, outer: int, header: int) -> None:
    container = bytearray(_container(_can_object()))
    struct.pack_into("<L", container, 8, outer)
    blob = bytearray(_blf_file(bytes(container)))
    struct.pack_into("<L", blob, 4, header)
    path = tmp_path / "hostile.blf"
    path.write_bytes(bytes(blob))
    _check_frames(path)


def test_blf_object_of_size_zero_is_an_error_not_an_endless_stream(tmp_path) -> None:
    """Regression: python-can's BLFReader yields the same frame forever for an inner object of size 0."""
    path = tmp_path / "zero.blf"
    path.write_bytes(_blf_file(_container(_can_object(size=0))))
    with pytest.raises(DataFormatError, match=r"byte 144, after frame 0\): inner object of 0 bytes"):
        for i, _ in enumerate(read_log(path)):
            assert i < 10, "the same frame again and again"


def test_blf_unknown_header_version_with_size_zero_does_not_hang(tmp_path) -> None:
    """Regression: with an unknown header version and size 0, python-can's reader loops without yielding."""
    path = tmp_path / "spin.blf"
    path.write_bytes(_blf_file(_container(_can_object(size=0, version=3))))
    with pytest.raises(DataFormatError, match="inner object of 0 bytes"):
        list(read_log(path))


def test_blf_zlib_bomb_is_refused_before_it_is_inflated(tmp_path) -> None:
    """Regression: a container of ~100 kB inflating to 100 MB was inflated whole by python-can."""
    path = tmp_path / "bomb.blf"
    path.write_bytes(_blf_file(_container(_can_object() + b"\x00" * (100 << 20), method=2)))
    assert path.stat().st_size < 200_000
    with pytest.raises(DataFormatError, match=f"inflates to more than {_blf.MAX_CONTAINER_BYTES} bytes"):
        list(read_log(path))


def test_blf_object_announcing_4_gb_is_an_error_not_a_growing_tail(tmp_path) -> None:
    """Regression: an inner object announcing 4 GB made python-can keep (and re-join) every later container."""
    path = tmp_path / "tail.blf"
    path.write_bytes(_blf_file(*[_container(_can_object(size=0xFFFFFFF0) if i == 0 else _can_object())
                                 for i in range(50)]))
    with pytest.raises(DataFormatError, match="inner object of 4294967280 bytes"):
        list(read_log(path))


def test_blf_cut_short_gives_the_frames_before_and_a_named_error(tmp_path) -> None:
    """A logger powered off mid-write: the complete frames come first, then an error naming the file."""
    frames = [can.Message(timestamp=1.6e9 + i, arbitration_id=i, data=bytes([i])) for i in range(100)]
    path = _write(tmp_path / "cut.blf", frames)
    path.write_bytes(path.read_bytes()[:-30])
    got = []
    with pytest.raises(DataFormatError, match="cut short"):
        got.extend(read_log(path))
    assert 0 < len(got) < 100 and [m.arbitration_id for m in got] == list(range(len(got)))


# ------------------------------------------------------------------------------ mutations of real frames
_REAL = {"tesla_model_s/candump.log": 4000, "kona_ev/230112-7-2019-pcan-ccan-power-off-on-ready-off.csv": 4000}
_SUFFIXES = [".blf", ".asc", ".trc", ".csv"]
MUTATIONS = max(20, EXAMPLES // 10)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, insert and delete a few bytes (and sometimes a whole stretch, or a 32-bit size) at random places."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(buf) + 1)
        op = rng.random()
        if op < 0.35 and at < len(buf):
            buf[at] ^= 1 << rng.randrange(8)
        elif op < 0.5 and at + 4 <= len(buf):
            buf[at:at + 4] = rng.choice([0, 1, 16, 0x7FFFFFFF, 0xFFFFFFFF]).to_bytes(4, "little")
        elif op < 0.7:
            buf[at:at] = rng.randbytes(rng.choice([1, 2, 8, 4096]))
        elif op < 0.9:
            del buf[at:at + rng.choice([1, 3, 64, 5000])]
        else:
            buf[at:at] = rng.choice([b"\n", b"nan", b"inf", b"LOBJ", b"\x00" * 8, b"\xff\xfe", b"FFFFFFFF"])
    return bytes(buf)


@pytest.mark.shared_data
@pytest.mark.parametrize("suffix", _SUFFIXES)
@pytest.mark.parametrize("rel", sorted(_REAL))
def test_mutated_logs_of_real_frames_give_frames_or_named_errors(can_data: Path, tmp_path: Path, rel: str,
                                                                 suffix: str) -> None:
    frames = list(islice(read_log(can_data / rel), _REAL[rel]))
    original = _write(tmp_path / f"real{suffix}", frames)
    assert [m.arbitration_id for m in _check_frames(original)] == [m.arbitration_id for m in frames]
    data = original.read_bytes()
    path = tmp_path / f"mutated{suffix}"
    for i in range(MUTATIONS):
        path.write_bytes(_mutate(data, random.Random(f"{rel}{suffix}:{i}")))
        try:
            _check_frames(path)
        except Exception as exc:
            raise AssertionError(f"{rel} as {suffix}, mutation {i}: {type(exc).__name__}: {exc}") from exc


@pytest.mark.shared_data
def test_blf_of_real_frames_reads_as_python_can_reads_it(can_data: Path, tmp_path: Path) -> None:
    frames = list(read_log(can_data / "tesla_model_s/candump.log"))
    path = _write(tmp_path / "tesla.blf", frames)
    ours = list(read_log(path))
    assert len(ours) == len(frames) > 10_000
    assert [_key(m) for m in ours] == [_key(m) for m in can.BLFReader(str(path))]
