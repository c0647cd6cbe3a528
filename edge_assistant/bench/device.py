"""``bench device``: the whole device under load: does audio ever wait, does memory stay flat?

What runs is what the service runs (:class:`~edge_assistant.app.runtime.App`), fed by real peers:

* **microphone**: an ALSA PCM of ``type file`` on a ``null`` slave whose ``infile`` is a FIFO; a writer
  thread speaks a cabin scene into it (espeak-ng commands after the wake word in generated cabin noise,
  :mod:`edge_assistant.pipeline.scene`) at 48 kHz, the rate the device's ``ea_mic48`` delivers, so the C
  resampler runs too. ``speed`` 1.0 writes it in real time (80 ms every 80 ms, as a microphone does);
  ``speed`` None writes as fast as the pipeline takes it (at most half a ring buffer ahead; while the
  pipeline is busy, on in real time up to 90 % of the ring, as a microphone would; nothing is dropped by
  design and the run is an accelerated soak);
* **CAN**: the demo EV drives on the virtual bus (its drive, its ECUs answering UDS) and a load thread adds
  frames of the same drive until the bus carries ``can_fps`` frames/s (8,700/s is a 1 Mbit/s bus full of
  8-byte frames), all decoded by the vehicle reader;
* resident memory and open file descriptors are sampled every ``sample_every_s`` of wall time.

Reported: capture overruns (audio dropped because the pipeline fell behind) and ALSA xruns, commands spoken
vs answered with their intents, reply latency, CAN frames decoded and the reader's CPU share, and the
memory/descriptor series with the growth after warm-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEVICE_RATE_HZ = 48000
CHUNK_MS = 80
PCM_NAME = "ea_bench_mic"
DEFAULT_COMMANDS = (
    "Why is the tyre light on?",
    "How much range do I have left?",
    "What does the warning light mean?",
    "Can I drive two hundred kilometres?",
)
_channels = itertools.count()


@dataclass(frozen=True)
class DeviceBenchConfig:
    seconds: float = 60.0
    """Seconds of audio the device captures."""
    speed: float | None = 1.0
    """1.0: a real-time microphone; None: as fast as the pipeline takes the audio (accelerated soak)."""
    can_fps: float = 8700.0
    """Frames per second on the vehicle bus, the demo car's own included (0: the demo car alone)."""
    commands: tuple[str, ...] = DEFAULT_COMMANDS
    snr_db: float = 15.0
    sample_every_s: float = 5.0
    warmup_fraction: float = 0.2
    """Memory growth is measured from the first sample after this fraction of the run."""
    seed: int = 7


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def hold_back(written_16k: int, block_16k: int, app: Any, ring_samples: int, stop: threading.Event) -> bool:
    """Back-pressure for a microphone written as fast as the pipeline takes it; True once ``stop`` is set.

    Up to half a ring ahead of what the pipeline took, the next block goes at once; from there up to 90 % of
    the ring, in real time, as a microphone keeps delivering while the pipeline is busy (a long recognition
    pass shows as a backlog, not as a silent microphone); beyond that it waits, so nothing is dropped."""
    block_s = block_16k / 16000.0
    while not stop.is_set():
        backlog = written_16k - app.stats.samples
        if backlog <= ring_samples // 2:
            return False
        if backlog + block_16k <= 0.9 * ring_samples:
            return stop.wait(block_s)
        time.sleep(0.005)
    return True


class Microphone(threading.Thread):
    """Writes the scene (looped, or once and then silence) into the FIFO that ALSA reads as the microphone.

    In real time each ``chunk_ms`` block is written when its last sample has been "spoken" (``t0`` + its end
    / speed), as a microphone delivers a period once it is full: sample ``n`` exists at ``t0 + n / rate``."""

    def __init__(self, fifo: Path, pcm48: np.ndarray, cfg: DeviceBenchConfig, app: Any, ring_samples: int,
                 chunk_ms: int = CHUNK_MS, loop: bool = True) -> None:
        super().__init__(name="bench-microphone", daemon=True)
        self.fifo, self.pcm48, self.cfg, self.app = fifo, pcm48, cfg, app
        self.ring_samples = ring_samples
        self.chunk = DEVICE_RATE_HZ * chunk_ms // 1000
        self.loop = loop
        self.stop_event = threading.Event()
        self.go = threading.Event()  # set once the device is up: the microphone talks from then on
        self.written_16k = 0
        self.t0: float | None = None
        """``time.monotonic()`` at which the first sample was spoken."""
        os.mkfifo(fifo)
        self.fd = os.open(fifo, os.O_RDWR)
        fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, 1 << 16)

    def run(self) -> None:
        chunk = self.chunk
        total = int(self.cfg.seconds * DEVICE_RATE_HZ) + DEVICE_RATE_HZ  # a second more than the run takes
        pos = 0
        try:
            while not self.go.wait(0.1):
                if self.stop_event.is_set():
                    return
            t0 = self.t0 = time.monotonic()
            while pos < total and not self.stop_event.is_set():
                i = pos % self.pcm48.size
                block = self.pcm48[i : i + chunk]
                if not self.loop and pos >= self.pcm48.size:
                    block = np.zeros(chunk, np.int16)
                if self.cfg.speed is not None:
                    due = t0 + (pos + block.size) / DEVICE_RATE_HZ / self.cfg.speed
                    if self.stop_event.wait(max(0.0, due - time.monotonic())):
                        break
                elif hold_back(self.written_16k, block.size // 3, self.app, self.ring_samples, self.stop_event):
                    break
                os.write(self.fd, block.astype("<i2").tobytes())
                pos += block.size
                self.written_16k = pos // 3
        finally:
            self.stop_event.wait()  # keep the FIFO open (its end would be endless silence) until told
            os.unlink(self.fifo)
            os.close(self.fd)


class _CanLoad(threading.Thread):
    """Adds frames of the demo drive to the vehicle bus so that it carries ``fps`` frames/s."""

    def __init__(self, bus_spec: str, frames: list, fps: float) -> None:
        super().__init__(name="bench-can-load", daemon=True)
        self.bus_spec, self.frames, self.fps = bus_spec, frames, fps
        self.stop_event = threading.Event()
        self.sent = 0

    def run(self) -> None:
        import can

        from edge_assistant.vehicle.bus import discard_received, open_bus, parse_bus_spec

        bus = open_bus(parse_bus_spec(self.bus_spec))
        t0 = time.perf_counter()
        try:
            while not self.stop_event.is_set():
                due = int((time.perf_counter() - t0) * self.fps)
                while self.sent < due:
                    with contextlib.suppress(can.CanError):  # a full queue is the reader's loss, counted there
                        bus.send(self.frames[self.sent % len(self.frames)], timeout=0)
                    self.sent += 1
                discard_received(bus)  # a virtual bus queues what this sender never reads
                time.sleep(0.001)
        finally:
            bus.shutdown()


def scene_at_device_rate(commands: tuple[str, ...], snr_db: float, seed: int) -> tuple[Any, np.ndarray]:
    """The cabin scene (:func:`~edge_assistant.pipeline.scene.build_scene`) and its int16 audio at 48 kHz."""
    from edge_assistant.pipeline.scene import SceneTurn, build_scene

    scene = build_scene([SceneTurn(c) for c in commands], snr_db=snr_db, seed=seed)
    return scene, resample_to_device(scene.pcm)


def resample_to_device(pcm16k: np.ndarray) -> np.ndarray:
    """int16 audio at 16 kHz → int16 at the device microphone's 48 kHz (the C resampler)."""
    from edge_assistant.audio.frontend import resample

    return np.clip(np.round(resample(pcm16k.astype(np.float32) / 32768.0, 16000, DEVICE_RATE_HZ) * 32768.0),
                   -32768, 32767).astype(np.int16)


def device_input(pcm16k: np.ndarray) -> np.ndarray:
    """int16 audio at 16 kHz → what the device hears of it spoken into its 48 kHz microphone (the capture's own
    conversion): the same samples the pipeline is fed in a real-time run, band-limited and 46 samples later."""
    from edge_assistant.audio.capture import convert_stream

    return convert_stream(resample_to_device(pcm16k).tobytes(), DEVICE_RATE_HZ)


def fifo_microphone(work_dir: Path) -> Path:
    """Point this process's ALSA at a config whose PCM ``ea_bench_mic`` reads the FIFO returned (not yet made)."""
    fifo = work_dir / "mic.fifo"
    conf = work_dir / "asound.conf"
    conf.write_text(f'pcm.{PCM_NAME} {{\n  type file\n  slave.pcm {{ type null }}\n  file "/dev/null"\n'
                    f'  infile "{fifo}"\n  format "raw"\n}}\n')
    os.environ["ALSA_CONFIG_PATH"] = str(conf)
    return fifo


def bench_config(work_dir: Path, bus: str, base: Any = None, **sections: Any):
    """The demo device (or ``base``, a device configuration) on ``bus`` with the FIFO microphone at 48 kHz, files in
    ``work_dir``, no speaker (replies are not spoken, so the follow-up window, which opens after a spoken reply,
    is off too); ``sections`` replace whole sections (e.g. ``gnss=...``)."""
    from edge_assistant.core.config import default_config, default_paths
    from edge_assistant.core.paths import model_cache_dir

    base = base if base is not None else default_config()
    return replace(base, audio=replace(base.audio, device=PCM_NAME, sample_rate_hz=DEVICE_RATE_HZ),
                   speech=replace(base.speech, enabled=False),
                   vehicle=replace(base.vehicle, bus=bus), diagnostics=replace(base.diagnostics, bus=bus),
                   paths=default_paths({}, state_dir=work_dir / "state", cache_dir=work_dir / "cache",
                                       model_cache_dir=model_cache_dir()), **sections)


def start_can_load(app: Any, bus: str, can_fps: float) -> tuple[_CanLoad | None, float]:
    """(load thread or None, the demo car's own frames/s): frames of the demo car's drive from its start point
    are added to ``bus`` until it carries ``can_fps`` frames/s in all."""
    from edge_assistant.vehicle.logs import read_log

    if can_fps <= 0:
        return None, 0.0
    frames = list(read_log(app.vehicle.demo_car.log_path))
    t0 = frames[0].timestamp
    demo_fps = len(frames) / (frames[-1].timestamp - t0)
    window = [m for m in frames if m.timestamp - t0 >= app.config.demo_car.start_s]
    load = _CanLoad(bus, window, max(0.0, can_fps - demo_fps))
    load.start()
    return load, demo_fps


def start_sampler(app: Any, rss: list, stop: threading.Event, every_s: float, progress: Any,
                  name: str, log: Path | None = None, extra: Callable[[], dict] | None = None) -> threading.Thread:
    """A thread appending (wall s, RSS MB, open fds) to ``rss`` every ``every_s`` until ``stop``.

    ``log``: each sample is also appended to this file as a JSON line with the run's counters so far (audio
    seconds, wakes, commands, replies, errors, CPython's allocated blocks, and what ``extra()`` returns), flushed
    at once: a run cut short still leaves its record."""

    def sample() -> None:
        t0 = time.monotonic()
        fh = log.open("a", encoding="utf-8") if log is not None else None
        try:
            while True:
                row = (round(time.monotonic() - t0, 1), round(_rss_mb(), 1), _open_fds())
                rss.append(row)
                if fh is not None:
                    st = app.stats
                    fh.write(json.dumps({
                        "wall_s": row[0], "rss_mb": row[1], "fds": row[2], "audio_s": round(st.samples / 16000, 1),
                        "wakes": st.wakes, "commands": st.commands, "replies": st.replies,
                        "responder_errors": st.responder_errors, "time": round(time.time(), 1),
                        "python_blocks": sys.getallocatedblocks(),
                        **(extra() if extra is not None else {})}) + "\n")
                    fh.flush()
                if progress is not None:
                    progress(app.stats.samples / 16000.0)
                if stop.wait(every_s):
                    return
        finally:
            if fh is not None:
                fh.close()

    sampler = threading.Thread(target=sample, name=name, daemon=True)
    sampler.start()
    return sampler


def run_device_bench(cfg: DeviceBenchConfig, work_dir: Path, progress: Any = None) -> dict[str, Any]:
    """Run the device for ``cfg.seconds`` of audio in ``work_dir``; the figures as a JSON-able dict."""
    from edge_assistant.app.runtime import App

    work_dir.mkdir(parents=True, exist_ok=True)
    scene, pcm48 = scene_at_device_rate(cfg.commands, cfg.snr_db, cfg.seed)
    fifo = fifo_microphone(work_dir)
    bus = f"virtual:bench-device-{os.getpid()}-{next(_channels)}"
    config = bench_config(work_dir, bus)
    events = EventRecord(keep_heard=2 * len(cfg.commands))
    rss: list[tuple[float, float, int]] = []
    app = App(config, emit=events, environ={"RUNTIME_DIRECTORY": str(work_dir / "run")})
    t_load = time.perf_counter()
    mic = None
    load = None
    sampler_stop = threading.Event()
    try:
        mic = Microphone(fifo, pcm48, cfg, app, round(config.audio.ring_buffer_s * 16000))
        mic.start()  # the FIFO must exist before ALSA opens the PCM
        app.load()
        load_s = time.perf_counter() - t_load
        mic.go.set()
        load, demo_fps = start_can_load(app, bus, cfg.can_fps)
        sampler = start_sampler(app, rss, sampler_stop, cfg.sample_every_s, progress, "bench-sampler")
        t_run = time.perf_counter()
        cpu0 = time.process_time()
        stats = app.run(for_s=cfg.seconds)
        wall = time.perf_counter() - t_run
        cpu = time.process_time() - cpu0
        sampler_stop.set()
        sampler.join(5.0)
        health = app.health()
    finally:
        sampler_stop.set()
        if load is not None:
            load.stop_event.set()
            load.join(5.0)
        if mic is not None:
            mic.stop_event.set()
        app.close()
        if mic is not None:
            mic.join(5.0)
    return _summary(cfg, scene, events, stats, health, rss, wall, cpu, load_s, load, demo_fps)


def _pct(values: Any, q: float) -> float | None:
    return None if not len(values) else round(float(np.percentile(values, q)), 1)


class EventRecord:
    """The assistant's ``emit``: keeps what the summaries need, not the events themselves.

    The benchmark shares the process whose memory it measures, and a 24-hour soak emits hundreds of
    thousands of events: a list of them would grow by kilobytes per command and show up as the assistant's
    growth. Kept here: counts per event type, replies per intent, the first ``keep_heard`` (heard, intent)
    pairs, each reply's latency and ASR time (8 bytes each: 0.2 MB for a day of commands every 6 s) and the
    health reports that said failing (at most ``keep_failing``, with their wall-clock time).
    """

    def __init__(self, keep_heard: int, keep_failing: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._keep_heard, self._keep_failing = keep_heard, keep_failing
        self.counts: Counter[str] = Counter()
        self.intents: Counter[str] = Counter()
        self.heard: list[list[str]] = []
        self.reply_latency_ms = array("d")
        self.asr_ms = array("d")
        self.failing_health: list[tuple[float, dict]] = []

    def __call__(self, ev: dict) -> None:
        kind = ev.get("event", "")
        with self._lock:
            self.counts[kind] += 1
            if kind == "reply":
                self.intents[ev["intent"]] += 1
                if len(self.heard) < self._keep_heard:
                    self.heard.append([ev["heard"], ev["intent"]])
                self.reply_latency_ms.append(ev["reply_latency_ms"])
                self.asr_ms.append(ev["asr_ms"])
            elif kind == "health" and ev.get("status") == "failing" and len(self.failing_health) < self._keep_failing:
                self.failing_health.append((time.time(), ev))


def _summary(cfg, scene, events: EventRecord, stats, health, rss, wall, cpu, load_s, load, demo_fps) -> dict[str, Any]:
    loop_s = scene.duration_s
    spoken = 0
    for k in range(int(cfg.seconds // loop_s) + 1):  # commands whose end lies inside the captured audio
        spoken += sum(1 for s in scene.segments if k * loop_s + s.command_end_s + 1.0 <= cfg.seconds)
    warm = [r for r in rss if r[0] >= cfg.warmup_fraction * rss[-1][0]] if rss else []
    audio, vehicle = health.audio, health.vehicle
    return {
        "config": {"seconds": cfg.seconds, "speed": cfg.speed if cfg.speed is not None else "max",
                   "can_fps": cfg.can_fps, "snr_db": cfg.snr_db, "commands_per_loop": len(cfg.commands),
                   "scene_s": round(loop_s, 2), "device_rate_hz": DEVICE_RATE_HZ},
        "load_s": round(load_s, 2), "wall_s": round(wall, 2), "audio_s": round(stats.samples / 16000, 2),
        "speed_x": round(stats.samples / 16000 / wall, 2), "process_cpu_share": round(cpu / wall, 3),
        "capture": {k: audio.get(k) for k in ("overruns", "overrun_samples", "xruns", "reconnects", "thread_cpu_s",
                                               "device_rate_hz")},
        "commands_spoken": spoken, "wakes": stats.wakes, "commands_heard": stats.commands,
        "replies": events.counts["reply"], "listen_timeouts": stats.listen_timeouts,
        "responder_errors": stats.responder_errors, "judge_errors": stats.judge_errors,
        "intents": dict(events.intents), "heard": events.heard,
        "reply_latency_ms": {"p50": _pct(events.reply_latency_ms, 50), "p95": _pct(events.reply_latency_ms, 95)},
        "asr_ms": {"p50": _pct(events.asr_ms, 50), "p95": _pct(events.asr_ms, 95)},
        "max_chunk_ms": round(stats.max_chunk_ms, 1),
        "can": {"target_fps": cfg.can_fps, "demo_car_fps": round(demo_fps, 1), "load_frames_sent": load.sent if load
                else 0, "frames_decoded": vehicle.get("frames"), "error_frames": vehicle.get("error_frames"),
                "fps_decoded": round((vehicle.get("frames") or 0) / wall, 1)},
        "memory": {"samples": rss, "rss_mb_after_warmup": warm[0][1] if warm else None,
                   "rss_mb_end": rss[-1][1] if rss else None,
                   "rss_growth_mb_after_warmup": round(warm[-1][1] - warm[0][1], 1) if warm else None,
                   "rss_max_mb": max(r[1] for r in rss) if rss else None,
                   "fds_after_warmup": warm[0][2] if warm else None, "fds_end": rss[-1][2] if rss else None},
    }
