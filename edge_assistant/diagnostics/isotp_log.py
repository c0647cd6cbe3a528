"""ISO-TP (ISO 15765-2) reassembly from a recorded frame stream, for logs.

Live traffic goes through can-isotp's stacks (``clients.py``, ``virtual_ecu.py``); a recording has no
one to send flow control to, so this module only *listens*: single frames and first + consecutive frames
are joined per CAN id; flow-control frames are noted and skipped. Protocol violations raise
``DataFormatError`` naming the frame (id, time, bytes); the reassembler resets that id and goes on.

Memory is bounded: a first frame may announce at most :data:`MAX_MESSAGE_BYTES` (the 12-bit length of
classic CAN; the 32-bit escape is read but held to the same cap unless ``max_message_bytes`` is raised),
and a partial message whose last frame is more than N_Cr old in log time expires (counted in
``expired_messages``), so abandoned messages do not pile up.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from edge_assistant.core.errors import DataFormatError

log = logging.getLogger(__name__)

PCI_SINGLE = 0
PCI_FIRST = 1
PCI_CONSECUTIVE = 2
PCI_FLOW_CONTROL = 3
#: Longest message reassembled by default: 4095 bytes, the 12-bit FF_DL of classic CAN (what ``segment`` makes).
MAX_MESSAGE_BYTES = 4095


@dataclass(frozen=True)
class IsoTpPdu:
    """One reassembled ISO-TP message."""

    arbitration_id: int
    timestamp_s: float  # time of the last frame
    data: bytes
    frames: int = 1


@dataclass
class _Partial:
    expected_len: int
    data: bytearray
    next_seq: int
    last_s: float
    frames: int


def _where(arb_id: int, t_s: float, data: bytes) -> str:
    return f"frame 0x{arb_id:03X} at t={t_s:.6f}s [{bytes(data).hex(' ')}]"


@dataclass
class IsoTpReassembler:
    """Joins classic-CAN ISO-TP frames per arbitration id.

    ``consecutive_timeout_s`` is N_Cr: a gap longer than this between frames of one message aborts it,
    and any unfinished message whose last frame is older than this (in log time) expires.
    ``ids`` limits reassembly to these ids (None: every id whose frames parse as ISO-TP).
    ``max_message_bytes`` is the longest length a first frame may announce.
    """

    consecutive_timeout_s: float = 1.0
    ids: frozenset[int] | None = None
    max_message_bytes: int = MAX_MESSAGE_BYTES
    _partials: dict[int, _Partial] = field(default_factory=dict)
    flow_control_frames: int = 0
    expired_messages: int = 0  # unfinished messages dropped after N_Cr without a frame

    def feed(self, arbitration_id: int, data: bytes, timestamp_s: float) -> IsoTpPdu | None:
        """Feed one frame; returns a complete PDU or None. Raises DataFormatError on a violation."""
        if self.ids is not None and arbitration_id not in self.ids:
            return None
        where = _where(arbitration_id, timestamp_s, data)
        if not data:
            raise DataFormatError(where, "empty frame, no ISO-TP PCI byte")
        if not math.isfinite(timestamp_s):
            raise DataFormatError(where, "time stamp is not a finite number of seconds")
        pci = data[0] >> 4
        partial = self._partials.get(arbitration_id)
        if partial is not None and timestamp_s - partial.last_s > self.consecutive_timeout_s \
                and pci == PCI_CONSECUTIVE:
            del self._partials[arbitration_id]
            self.expired_messages += 1
            raise DataFormatError(where, f"consecutive frame {timestamp_s - partial.last_s:.3f}s after the "
                                         f"previous one (N_Cr {self.consecutive_timeout_s}s); message dropped")
        if self._partials:
            self._expire(timestamp_s)
            partial = self._partials.get(arbitration_id)
        if pci == PCI_SINGLE:
            if partial is not None:
                del self._partials[arbitration_id]
                log.warning("%s: single frame interrupts a multi-frame message (%d of %d bytes); dropped",
                            where, len(partial.data), partial.expected_len)
            length = data[0] & 0x0F
            start = 1
            if length == 0 and len(data) > 8:  # CAN FD escape: length in the next byte
                length, start = data[1], 2
            if length == 0 or length > len(data) - start:
                raise DataFormatError(where, f"single frame length {length} does not fit {len(data) - start} "
                                             "data bytes")
            return IsoTpPdu(arbitration_id, timestamp_s, bytes(data[start:start + length]))
        if pci == PCI_FIRST:
            if len(data) < 8:
                raise DataFormatError(where, f"first frame must have 8 bytes on classic CAN, got {len(data)}")
            length = ((data[0] & 0x0F) << 8) | data[1]
            start = 2
            if length == 0:  # escape: 32-bit length
                length, start = int.from_bytes(data[2:6], "big"), 6
            if length <= 7:
                raise DataFormatError(where, f"first frame announces {length} bytes, which fits a single frame")
            if length > self.max_message_bytes:
                raise DataFormatError(where, f"first frame announces {length} bytes; at most "
                                             f"{self.max_message_bytes} are reassembled")
            if partial is not None:
                log.warning("%s: new first frame before the previous message ended; previous dropped", where)
            self._partials[arbitration_id] = _Partial(length, bytearray(data[start:]), 1, timestamp_s, 1)
            return None
        if pci == PCI_CONSECUTIVE:
            if partial is None:
                raise DataFormatError(where, "consecutive frame without a first frame")
            seq = data[0] & 0x0F
            if seq != partial.next_seq:
                del self._partials[arbitration_id]
                raise DataFormatError(where, f"sequence number {seq}, expected {partial.next_seq}; message dropped")
            partial.data += data[1:]
            partial.next_seq = (seq + 1) & 0x0F
            partial.last_s = timestamp_s
            partial.frames += 1
            if len(partial.data) >= partial.expected_len:
                del self._partials[arbitration_id]
                return IsoTpPdu(arbitration_id, timestamp_s, bytes(partial.data[:partial.expected_len]),
                                partial.frames)
            return None
        if pci == PCI_FLOW_CONTROL:
            if data[0] & 0x0F > 2:
                raise DataFormatError(where, f"flow status {data[0] & 0x0F} is not CTS/WAIT/OVFLW")
            self.flow_control_frames += 1
            return None
        raise DataFormatError(where, f"PCI type {pci} is not ISO-TP (0 SF, 1 FF, 2 CF, 3 FC)")

    def _expire(self, now_s: float) -> None:
        """Drop unfinished messages whose last frame is more than N_Cr before ``now_s``."""
        for arb_id, p in list(self._partials.items()):
            if now_s - p.last_s > self.consecutive_timeout_s:
                del self._partials[arb_id]
                self.expired_messages += 1
                log.warning("id 0x%03X: multi-frame message expired at t=%.6fs, no frame for over N_Cr %ss "
                            "(%d of %d bytes); dropped", arb_id, now_s, self.consecutive_timeout_s, len(p.data),
                            p.expected_len)

    @property
    def open_messages(self) -> dict[int, int]:
        """Ids with an unfinished multi-frame message -> bytes received so far."""
        return {k: len(v.data) for k, v in self._partials.items()}


def reassemble(frames: Iterable[tuple[int, bytes, float]], reassembler: IsoTpReassembler | None = None,
               errors: list[DataFormatError] | None = None) -> Iterator[IsoTpPdu]:
    """Reassemble ``(id, data, t_s)`` frames; violations are logged, appended to ``errors``, and skipped."""
    r = reassembler or IsoTpReassembler()
    for arb_id, data, t_s in frames:
        try:
            pdu = r.feed(arb_id, data, t_s)
        except DataFormatError as exc:
            log.warning("%s", exc)
            if errors is not None:
                errors.append(exc)
            continue
        if pdu is not None:
            yield pdu


def segment(payload: bytes, padding: int | None = None) -> list[bytes]:
    """Split ``payload`` into classic-CAN ISO-TP frames (SF, or FF + CFs), as a sender would.

    ``padding`` fills every frame to 8 bytes when given. Flow control is not modelled.
    """
    n = len(payload)
    if n == 0 or n > 4095:
        raise DataFormatError("ISO-TP segment", f"payload of {n} bytes (1..4095 on classic CAN)")

    def pad(frame: bytes) -> bytes:
        return frame if padding is None else frame.ljust(8, bytes([padding]))

    if n <= 7:
        return [pad(bytes([n]) + payload)]
    frames = [bytes([0x10 | (n >> 8), n & 0xFF]) + payload[:6]]
    seq, i = 1, 6
    while i < n:
        frames.append(pad(bytes([0x20 | seq]) + payload[i:i + 7]))
        seq, i = (seq + 1) & 0x0F, i + 7
    return frames
