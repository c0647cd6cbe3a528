#!/usr/bin/env python3
"""Microphone capture cost and robustness through the real ALSA library, without sound hardware.

The "microphone" is an ALSA ``type file`` PCM on a ``null`` slave whose infile plays a real recording
(``../shared/data/wakeword/multiple_keywords.wav``, converted to the device format at 48 kHz):

1. **CPU per second of audio.** The infile is a regular file, so ALSA delivers frames as fast as the
   capture thread reads them; its CPU time (``CaptureStats.thread_cpu_s``) over the audio it produced
   is the cost per second of audio: read, mix to mono, resample 48 -> 16 kHz in C, ring write.
2. **Real time under GIL pressure.** The infile is a FIFO that a writer *process* fills one period
   at a time on a 48 kHz schedule, with a pipe of about the ALSA buffer (341 ms: 32 KiB at S16 mono, 128 KiB
   at S32 stereo; the capture opens 4 x 80 ms = 320 ms): if the capture thread lagged by more than that, the writer
   would block on the full pipe and fall behind its schedule, where real hardware would xrun. Meanwhile a consumer drains
   80 ms chunks as the pipeline does, and a busy thread holds the GIL in chunks (numpy work in Python
   loops, plus ``sorted()`` over ``--sort-items`` floats, one C call holding the GIL throughout; the
   hold times are measured and reported).
   Reports ring overruns, writes that blocked on a full pipe, and the writer's worst lateness.

    python benchmarks/capture_cpu.py [--seconds 60] [--rt-seconds 20] [--format S16_LE --channels 1]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from edge_assistant.audio.capture import MicrophoneCapture
from edge_assistant.audio.frontend import resample
from edge_assistant.audio.io import read_audio
from edge_assistant.core.config import AudioSettings

PCM = "ea_bench_mic"


def _shared_data() -> Path:
    env = os.environ.get("EDGE_ASSISTANT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _device_frames(x16k: np.ndarray, s: AudioSettings) -> np.ndarray:
    x = np.clip(resample(x16k, 16000, s.sample_rate_hz), -0.99, 0.99)
    full, dtype = (32768.0, "<i2") if s.sample_format == "S16_LE" else (2147483648.0, "<i4")
    mono = np.rint(x * full).astype(dtype)
    return np.repeat(mono, s.channels)  # the same signal on every channel, interleaved


def _write_conf(root: Path, infile: Path) -> None:
    # A new file name per phase: ALSA reloads a changed configuration by path and mtime (in seconds), so
    # rewriting the same file within a second would leave the previous PCM definition in force.
    conf = root / f"asound-{infile.stem}.conf"
    conf.write_text(
        f'pcm.{PCM} {{ type file slave.pcm {{ type null }} file "/dev/null" infile "{infile}" format "raw" }}\n'
    )
    os.environ["ALSA_CONFIG_PATH"] = str(conf)


def _wait(pred, what: str, timeout_s: float = 600.0) -> None:  # noqa: ANN001 - a plain callable
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def cpu_per_audio_second(s: AudioSettings, frames: np.ndarray, seconds: float, root: Path) -> dict:
    infile = root / "cpu.raw"
    reps = int(np.ceil(seconds * s.sample_rate_hz * s.channels / frames.size))
    infile.write_bytes(np.tile(frames, reps).tobytes())
    _write_conf(root, infile)
    cap = MicrophoneCapture(s)
    cap.start()
    want = int(seconds * 16000)
    _wait(lambda: cap.stats().samples_captured >= want, "audio")
    st = cap.stats()
    cap.stop()
    audio_s = st.samples_captured / 16000.0
    return {"audio_s": round(audio_s, 2), "thread_cpu_s": round(st.thread_cpu_s, 4),
            "cpu_ms_per_audio_s": round(1000.0 * st.thread_cpu_s / audio_s, 3),
            "cpu_percent_at_real_time": round(100.0 * st.thread_cpu_s / audio_s, 3)}


def _busy(stop: threading.Event, holds_s: list[float], sort_items: int) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((32, 32)).astype(np.float32)
    floats = rng.standard_normal(sort_items).tolist()
    while not stop.is_set():
        for _ in range(2000):  # many short numpy calls: the GIL changes hands only between them
            a = np.tanh(a @ a * np.float32(0.05))
        t0 = time.perf_counter()
        sorted(floats)  # one long C call holding the GIL throughout
        holds_s.append(time.perf_counter() - t0)


#: The paced writer runs in a process of its own, so its timing is not disturbed by this process's GIL:
#: it is late only when the pipe is full, i.e. when the capture thread lags.
_WRITER = r"""
import json, os, sys, time
fifo, data, period_bytes, n_periods, period_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
buf = open(data, "rb").read()
fd = os.open(fifo, os.O_WRONLY)
late, blocked = [], []
t0 = time.monotonic()
for k in range(n_periods):
    due = t0 + k * period_s
    now = time.monotonic()
    if now < due:
        time.sleep(due - now)
    t1 = time.monotonic()
    late.append(t1 - due)
    os.write(fd, buf[k * period_bytes : (k + 1) * period_bytes])
    blocked.append(time.monotonic() - t1)
os.close(fd)
print(json.dumps({"late": late, "blocked": blocked}))
"""


def real_time_under_load(s: AudioSettings, frames: np.ndarray, seconds: float, root: Path,
                         sort_items: int) -> dict:
    fifo = root / "rt.raw"
    os.mkfifo(fifo)
    hold = os.open(fifo, os.O_RDWR)  # keeps ALSA's open of the infile from blocking
    # About the ALSA buffer the capture opens (4 periods); the kernel rounds up to a power of two pages.
    fcntl.fcntl(hold, fcntl.F_SETPIPE_SZ, 4 * s.chunk_frames * s.channels * frames.itemsize)
    pipe_s = fcntl.fcntl(hold, fcntl.F_GETPIPE_SZ) / (s.sample_rate_hz * s.channels * frames.itemsize)
    _write_conf(root, fifo)
    period = s.chunk_frames * s.channels
    period_s = s.chunk_frames / s.sample_rate_hz
    n_periods = int(seconds / period_s)
    data = root / "rt.data"
    data.write_bytes(np.tile(frames, int(np.ceil(n_periods * period / frames.size)) + 1).tobytes())
    stop = threading.Event()
    holds: list[float] = []
    got = [0]
    cap = MicrophoneCapture(s)

    def consumer() -> None:
        while not stop.is_set():
            x = cap.read(timeout_s=0.5)
            if x is not None:
                got[0] += x.size
                float(np.dot(x.astype(np.float32), x.astype(np.float32)))

    cap.start()
    threads = [threading.Thread(target=consumer, daemon=True),
               threading.Thread(target=_busy, args=(stop, holds, sort_items), daemon=True)]
    for t in threads:
        t.start()
    cpu0 = time.process_time()
    writer = subprocess.run([sys.executable, "-c", _WRITER, str(fifo), str(data), str(period * frames.itemsize),
                             str(n_periods), str(period_s)], capture_output=True, text=True, check=True,
                            timeout=seconds + 120)
    timing = json.loads(writer.stdout)
    _wait(lambda: cap.stats().samples_captured >= n_periods * s.chunk_frames * 16000 // s.sample_rate_hz,
          "the last period", 30)
    st = cap.stats()
    stop.set()
    os.close(hold)  # EOF lets the capture thread leave the FIFO read
    cap.stop()
    for t in threads:
        t.join(5)
    late, blocked = np.array(timing["late"]), np.array(timing["blocked"])
    return {
        "audio_s": round(n_periods * period_s, 2), "alsa_buffer_s": round(4 * period_s, 3),
        "pipe_s": round(pipe_s, 3), "ring_overruns": st.overruns, "xruns": st.xruns,
        "writer_blocked_on_full_pipe": int(np.sum(blocked > 0.005)),
        "writer_worst_blocked_ms": round(1000.0 * float(blocked.max()), 2),
        "writer_late_over_1_period": int(np.sum(late > period_s)),
        "writer_worst_lateness_ms": round(1000.0 * float(late.max()), 2),
        "gil_holds": len(holds), "gil_hold_median_ms": round(1000.0 * float(np.median(holds)), 1),
        "gil_hold_max_ms": round(1000.0 * max(holds), 1), "delivered_s": round(got[0] / 16000.0, 2),
        "capture_thread_cpu_s": round(st.thread_cpu_s, 3),
        "process_cpu_s": round(time.process_time() - cpu0, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio for the CPU measurement")
    ap.add_argument("--rt-seconds", type=float, default=20.0, help="audio for the real-time run")
    ap.add_argument("--format", default="S16_LE", choices=("S16_LE", "S32_LE"))
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--sort-items", type=int, default=100_000,
                    help="floats the busy thread sorts per GIL hold (100k: about 50-80 ms here)")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()
    wav = _shared_data() / "wakeword" / "multiple_keywords.wav"
    if not wav.exists():
        print(f"capture_cpu: {wav} not found (set EDGE_ASSISTANT_SHARED_DATA)", file=sys.stderr)
        return 2
    s = AudioSettings(device=PCM, sample_rate_hz=48000, channels=args.channels, sample_format=args.format,
                      chunk_ms=80.0, ring_buffer_s=2.0)
    frames = _device_frames(read_audio(wav), s)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        result = {"format": args.format, "channels": args.channels, "rate_hz": 48000,
                  "cpu": cpu_per_audio_second(s, frames, args.seconds, root),
                  "real_time": real_time_under_load(s, frames, args.rt_seconds, root, args.sort_items)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
