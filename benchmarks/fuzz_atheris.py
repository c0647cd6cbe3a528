#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris, libFuzzer) of two binary parsers: the BLF reader and ISO-TP reassembly.

Not part of CI (atheris is a development tool: ``pip install atheris``). The property is the one the
hypothesis tests check: any input gives results or a ``DataFormatError``; any other exception, or a
reader that yields more frames than its input could hold, is a crash that libFuzzer reports and saves
(``crash-*`` in the working directory).

* ``blf``: the input is a BLF file body; the seeds are files python-can's BLFWriter made from frames of
  ``../shared/data/can/tesla_model_s/candump.log`` (compressed and not), plus a few hand-made containers.
* ``isotp``: the input is a stream of frames (2-byte id selector, 1-byte length, data, 1-byte time gap),
  fed to :class:`IsoTpReassembler`; reassembled messages must fit the announced limits.

    python benchmarks/fuzz_atheris.py blf -runs=200000
    python benchmarks/fuzz_atheris.py isotp -runs=200000 -max_len=2048
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from edge_assistant.core.errors import DataFormatError
    from edge_assistant.diagnostics.isotp_log import IsoTpReassembler
    from edge_assistant.vehicle._blf import read_blf

REPO = Path(__file__).resolve().parents[1]
TESLA_LOG = REPO.parent / "shared" / "data" / "can" / "tesla_model_s" / "candump.log"
_TMP = Path(tempfile.mkdtemp(prefix="fuzz-blf-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
_FILE = _TMP / "input.blf"


def blf_one_input(data: bytes) -> None:
    _FILE.write_bytes(data)
    limit = 1 + 16 * (len(data) + 1) * 1032 // 32  # zlib inflates at most ~1032:1; an object is >= 32 bytes
    n = 0
    try:
        for m in read_blf(_FILE):
            n += 1
            if n > limit:
                raise RuntimeError(f"runaway: {n} frames from {len(data)} bytes")
            if len(m.data) > 64 or not 0 <= m.arbitration_id <= 0x1FFFFFFF:
                raise RuntimeError(f"impossible frame {m}")
    except DataFormatError:
        pass


_IDS = (0x7E0, 0x7E8, 0x7DF, 0x7EC)


def isotp_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    r = IsoTpReassembler(consecutive_timeout_s=fdp.ConsumeFloatInRange(0.001, 2.0))
    t = 0.0
    while fdp.remaining_bytes():
        arb = _IDS[fdp.ConsumeIntInRange(0, 3)]
        frame = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
        t += fdp.ConsumeIntInRange(0, 255) / 100
        try:
            pdu = r.feed(arb, frame, t)
        except DataFormatError:
            continue
        if pdu is not None and not 1 <= len(pdu.data) <= r.max_message_bytes:
            raise RuntimeError(f"PDU of {len(pdu.data)} bytes")
        if len(r.open_messages) > len(_IDS) or any(n > r.max_message_bytes + 63 for n in r.open_messages.values()):
            raise RuntimeError(f"unbounded partial messages {r.open_messages}")


def _blf_seeds(folder: Path) -> None:
    import can

    from edge_assistant.vehicle.logs import read_log

    frames = [m for _, m in zip(range(300), read_log(TESLA_LOG), strict=False)] if TESLA_LOG.exists() else \
        [can.Message(timestamp=1.6e9 + i, arbitration_id=i, data=bytes([i % 256] * 8)) for i in range(300)]
    frames.append(can.Message(timestamp=frames[-1].timestamp + 1, is_fd=True, bitrate_switch=True, data=bytes(64),
                              arbitration_id=0x1234567, is_extended_id=True))
    frames.append(can.Message(timestamp=frames[-1].timestamp + 1, is_error_frame=True, arbitration_id=4))
    for level in (-1, 0):
        with can.BLFWriter(str(folder / f"seed{level}.blf"), compression_level=level) as w:
            for m in frames[:40] if level == 0 else frames:
                w.on_message_received(m)


def main() -> None:
    target = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in ("blf", "isotp") else "blf"
    argv = list(sys.argv)
    if target == "blf":
        corpus = _TMP / "corpus"
        corpus.mkdir()
        _blf_seeds(corpus)
        argv.append(str(corpus))
    atheris.Setup(argv, blf_one_input if target == "blf" else isotp_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
