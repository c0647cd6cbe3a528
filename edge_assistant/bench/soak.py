"""``soak``: the whole device for hours of audio, as fast as it goes, with faults injected on a seeded schedule.

The device and its peers are those of ``bench device`` (:mod:`edge_assistant.bench.device`): the service's
:class:`~edge_assistant.app.runtime.App`, a cabin scene spoken into an ALSA ``type file`` PCM whose infile is a
FIFO (48 kHz), the demo EV on a virtual bus topped up to ``can_fps`` frames/s. Added here:

* **GNSS**: ``[gnss]`` enabled on a pseudo-terminal (reached through a symlink, as ``/dev/serial/by-id`` is),
  fed with the demo drive's NMEA (:func:`edge_assistant.agents.demo.demo_nmea`) at ``gnss_lines_per_s``;
* **faults**, one cycle every ``fault_every_s`` seconds of audio, each at a seeded offset in the cycle:

  - ``can_errors``: a burst of controller error frames (``Message(is_error_frame=True)``) on the bus;
  - ``bus_off``: a burst of error frames of class BUS-OFF;
  - ``gnss_garbage``: lines of random bytes between the NMEA sentences (each one malformed line);
  - ``gnss_disconnect``: the pty closes (the receiver is unplugged), its path is gone for ``gnss_outage_s``,
    then a new pty appears under the same path;
  - ``mic_silence``: the microphone stops delivering for ``mic_outage_s`` (in a pause between commands, so no
    command is cut). The ALSA file plugin blocks in its infile read, so the capture sees no error: audio stops
    and health must say so, then recover when the audio returns;

* the microphone is also absent when the device starts (``mic_late_s``): the capture's open fails, it backs
  off and must reconnect when the FIFO appears.

Every fault is counted where the device counts it (bus reader, GNSS source, NMEA parser, capture) and compared
with what was injected; recovery is read from the health report the service writes (``health.json``): after
each fault, how long until the report is not ``failing`` and the faulted source is healthy again. Memory and
descriptors are sampled as in ``bench device``; growth and slope are measured after the warm-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import threading
import time
import tty
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.bench.device import (
    DEFAULT_COMMANDS,
    DEVICE_RATE_HZ,
    DeviceBenchConfig,
    EventRecord,
    _channels,
    _summary,
    bench_config,
    fifo_microphone,
    hold_back,
    scene_at_device_rate,
    start_can_load,
    start_sampler,
)

CAN_ERR_CRTL = 0x004  #: SocketCAN error class: controller problem (error counters)
CAN_ERR_BUSOFF = 0x040  #: SocketCAN error class: bus off
FAULTS = ("can_errors", "bus_off", "gnss_garbage", "gnss_disconnect", "mic_silence")
SAMPLES_LOG = "samples.jsonl"  #: in the work folder: one JSON line per memory sample, written as the run goes


@dataclass(frozen=True)
class SoakConfig:
    seconds: float = 3600.0
    """Seconds of audio the device captures."""
    speed: float | None = None
    """None: as fast as the pipeline takes the audio; X: X times real time."""
    can_fps: float = 8700.0
    commands: tuple[str, ...] = DEFAULT_COMMANDS
    snr_db: float = 15.0
    fault_every_s: float = 600.0
    """Seconds of audio per fault cycle (each fault once per cycle)."""
    faults: tuple[str, ...] = FAULTS
    can_error_burst: int = 200
    bus_off_burst: int = 3
    gnss_garbage_lines: int = 20
    gnss_outage_s: float = 3.0
    """Wall seconds the GNSS port is gone."""
    mic_outage_s: float = 4.0
    """Wall seconds the microphone is silent."""
    mic_late_s: float = 2.0
    """Wall seconds the microphone is absent when the device starts (0: there from the start)."""
    gnss_lines_per_s: float = 80.0
    recover_within_s: float = 30.0
    """Wall seconds a fault may take to recover before it counts as not recovered."""
    sample_every_s: float = 5.0
    warmup_fraction: float = 0.2
    seed: int = 7


# ------------------------------------------------------------------------------------------ the microphone
class _SoakMicrophone(threading.Thread):
    """Writes the scene, looped, into the FIFO ALSA reads; absent at first, silent when told."""

    def __init__(self, fifo: Path, pcm48: np.ndarray, cfg: SoakConfig, app: Any, ring_samples: int,
                 silences_at_s: list[float]) -> None:
        super().__init__(name="soak-microphone", daemon=True)
        self.fifo, self.pcm48, self.cfg, self.app, self.ring_samples = fifo, pcm48, cfg, app, ring_samples
        self.silences = sorted(silences_at_s)  # audio seconds where the microphone goes silent
        self.stop_event = threading.Event()
        self.go = threading.Event()
        self.appeared = threading.Event()
        self.realtime = threading.Event()  # set while a fault is pending: speak at 1x, so recovery has audio
        self.written_16k = 0
        self.silenced: list[tuple[float, float, float]] = []  # (audio s, wall start, wall end)
        self.fd = -1

    def _appear(self) -> None:
        tmp = self.fifo.with_name(self.fifo.name + ".new")
        os.mkfifo(tmp)
        self.fd = os.open(tmp, os.O_RDWR)  # a writer keeps it open: ALSA never sees EOF
        fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, 1 << 16)
        os.replace(tmp, self.fifo)
        self.appeared.set()

    def run(self) -> None:
        chunk = DEVICE_RATE_HZ * 80 // 1000
        total = int(self.cfg.seconds * DEVICE_RATE_HZ) + DEVICE_RATE_HZ
        pos = 0
        try:
            if self.cfg.mic_late_s <= 0:
                self._appear()
            while not self.go.wait(0.1):
                if self.stop_event.is_set():
                    return
            if not self.appeared.is_set():
                if self.stop_event.wait(self.cfg.mic_late_s):
                    return
                self._appear()
            t0 = time.monotonic()
            paused_s = 0.0
            while pos < total and not self.stop_event.is_set():
                if self.silences and pos >= self.silences[0] * DEVICE_RATE_HZ:
                    at = self.silences.pop(0)
                    w0 = time.monotonic()
                    if self.stop_event.wait(self.cfg.mic_outage_s):
                        break
                    self.silenced.append((at, w0, time.monotonic()))
                    paused_s += time.monotonic() - w0
                i = pos % self.pcm48.size
                block = self.pcm48[i : i + chunk]
                if self.cfg.speed is not None:
                    due = t0 + paused_s + pos / DEVICE_RATE_HZ / self.cfg.speed
                    if self.stop_event.wait(max(0.0, due - time.monotonic())):
                        break
                else:
                    if hold_back(self.written_16k, block.size // 3, self.app, self.ring_samples, self.stop_event):
                        break
                    if self.realtime.is_set() and self.stop_event.wait(block.size / DEVICE_RATE_HZ):
                        break
                os.write(self.fd, block.astype("<i2").tobytes())
                pos += block.size
                self.written_16k = pos // 3
        finally:
            self.stop_event.wait()
            with contextlib.suppress(OSError):
                os.unlink(self.fifo)
            if self.fd >= 0:
                os.close(self.fd)


# -------------------------------------------------------------------------------------------------- GNSS
class _GnssFeed(threading.Thread):
    """A receiver on a pty behind ``link``: NMEA lines of the demo drive, garbage and unplugging on demand."""

    def __init__(self, link: Path, nmea: Path, cfg: SoakConfig, rng: random.Random) -> None:
        super().__init__(name="soak-gnss", daemon=True)
        self.link, self.cfg, self.rng = link, cfg, rng
        self.lines = [ln.rstrip(b"\r\n") + b"\r\n" for ln in nmea.read_bytes().splitlines() if ln.strip()]
        self.stop_event = threading.Event()
        self.garbage_due = 0
        self.garbage_sent = 0
        self.unplug = threading.Event()
        self.unplugs = 0
        self.lines_sent = 0
        self.lock = threading.Lock()
        self.master = self.slave = -1
        self.source: Any = None  # the device's SerialGnssSource, set once it runs
        self._plug()

    def _plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line editing: bytes pass as a receiver sends them
        tmp = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, self.link)

    def _unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.master = self.slave = -1

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self.stop_event.is_set():
            view = view[os.write(self.master, view):]

    def run(self) -> None:
        period = 1.0 / self.cfg.gnss_lines_per_s
        nxt = time.monotonic()
        i = 0
        try:
            while not self.stop_event.is_set():
                if self.unplug.is_set():
                    self._unplug()
                    self.unplugs += 1
                    if self.stop_event.wait(self.cfg.gnss_outage_s):
                        return
                    self._plug()
                    self.unplug.clear()
                src = self.source
                if src is None or not src.stats.connected:  # nobody reads the pty: do not fill it
                    self.stop_event.wait(0.05)
                    nxt = time.monotonic()
                    continue
                if self.garbage_due:
                    n = self.rng.randrange(8, 120)
                    junk = bytes(b for b in self.rng.randbytes(n) if b not in (0x0A, 0x0D)) or b"\xff"
                    self._write(junk + b"\r\n")
                    self.garbage_due -= 1
                    self.garbage_sent += 1
                else:
                    self._write(self.lines[i % len(self.lines)])
                    i += 1
                    self.lines_sent += 1
                nxt += period
                self.stop_event.wait(max(0.0, nxt - time.monotonic()))
        finally:
            self._unplug()


# ---------------------------------------------------------------------------------------------- the faults
@dataclass
class _Fault:
    kind: str
    at_audio_s: float
    injected_wall_s: float | None = None
    ended_wall_s: float | None = None
    recovered_after_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def fault_schedule(cfg: SoakConfig, scene: Any) -> list[_Fault]:
    """Each fault of ``cfg.faults`` once per cycle of ``fault_every_s`` audio seconds, at seeded offsets.

    The microphone's silence is put in a pause of the scene (after a command's reply window), so it never
    cuts a command; the other faults may fall anywhere."""
    rng = random.Random(cfg.seed)
    loop_s = scene.duration_s
    pauses = [s.command_end_s + 1.2 for s in scene.segments]  # the endpointer closed the command by then
    out: list[_Fault] = []
    start = 0.0
    while start < cfg.seconds:
        end = min(cfg.seconds, start + cfg.fault_every_s)
        span = end - start
        if span < 20.0 and out:
            break
        slots = sorted(rng.uniform(0.1, 0.85) for _ in cfg.faults)
        kinds = list(cfg.faults)
        rng.shuffle(kinds)
        for kind, frac in zip(kinds, slots, strict=True):
            at = start + frac * span
            if kind == "mic_silence":
                k = int(at // loop_s)
                cands = [k * loop_s + p for p in pauses] + [(k + 1) * loop_s + p for p in pauses]
                at = min((c for c in cands if c >= at), default=at)
                if at >= cfg.seconds - 5.0:
                    continue
            out.append(_Fault(kind, round(at, 2)))
        start = end
    return sorted(out, key=lambda f: f.at_audio_s)


def _inject_error_frames(bus: Any, n: int, error_class: int) -> None:
    import can

    for _ in range(n):
        bus.send(can.Message(arbitration_id=error_class, is_error_frame=True, is_extended_id=False, dlc=8,
                             data=bytes([0, 0x04, 0, 0, 0, 0, 0, 0])))


def _read_report(path: Path) -> dict[str, Any] | None:
    from edge_assistant.app.health import read_health
    from edge_assistant.core.errors import DataFormatError

    try:
        return read_health(path)
    except DataFormatError:
        return None


def _recovered(kind: str, rep: dict[str, Any], gnss: Any, base: dict[str, Any]) -> bool:
    """Whether the report after a ``kind`` fault shows the device whole again."""
    from edge_assistant.app.health import AUDIO_STALL_S, CAN_STALE_S, GNSS_STALE_S

    if rep["status"] == "failing" or rep["written_at_s"] < base["t_end"]:
        return False
    v, a = rep.get("vehicle", {}), rep.get("audio", {})
    if kind in ("can_errors", "bus_off"):
        counted = v.get("error_frames", 0) >= base["error_frames"] and v.get("bus_off", 0) >= base["bus_off"]
        age = v.get("last_frame_age_s")
        return counted and bool(v.get("connected")) and v.get("frames", 0) > base["frames"] and \
            age is not None and age < CAN_STALE_S
    if kind in ("gnss_garbage", "gnss_disconnect"):
        age = v.get("gnss_fix_age_s")
        return bool(v.get("gnss_connected")) and gnss.fix_count > base["fixes"] and age is not None and \
            age < GNSS_STALE_S
    if kind == "mic_silence":
        age = a.get("last_chunk_age_s")
        return a.get("state") == "running" and age is not None and age < AUDIO_STALL_S
    return True


class _FaultInjector(threading.Thread):
    """Fires the scheduled faults as the captured audio passes their time; measures each recovery."""

    def __init__(self, schedule: list[_Fault], cfg: SoakConfig, app: Any, bus_spec: str, gnss: _GnssFeed,
                 mic: _SoakMicrophone) -> None:
        super().__init__(name="soak-faults", daemon=True)
        self.schedule, self.cfg, self.app, self.bus_spec, self.gnss, self.mic = schedule, cfg, app, bus_spec, gnss, mic
        self.stop_event = threading.Event()
        self.injected = {"error_frames": 0, "bus_off": 0}

    def run(self) -> None:
        from edge_assistant.vehicle.bus import discard_received, open_bus, parse_bus_spec

        bus = open_bus(parse_bus_spec(self.bus_spec))
        try:
            for f in self.schedule:
                while self.app.stats.samples / 16000.0 < f.at_audio_s and not self.stop_event.is_set():
                    discard_received(bus)
                    self.stop_event.wait(0.05)
                if self.stop_event.is_set():
                    return
                # While a fault and its recovery are pending the microphone speaks in real time: at full speed
                # the rest of the audio could end before the recovery shows in a health report.
                self.mic.realtime.set()
                try:
                    self._fire(f, bus)
                    self._await_recovery(f)
                finally:
                    self.mic.realtime.clear()
        finally:
            bus.shutdown()

    def _base(self) -> dict[str, Any]:
        r = self.app.vehicle.reader.stats
        src = self.gnss.source
        return {"frames": r.frames, "error_frames": self.injected["error_frames"],
                "bus_off": self.injected["bus_off"], "fixes": src.fix_count if src is not None else 0}

    def _fire(self, f: _Fault, bus: Any) -> None:
        f.injected_wall_s = time.time()
        src = self.gnss.source
        if f.kind == "can_errors":
            _inject_error_frames(bus, self.cfg.can_error_burst, CAN_ERR_CRTL)
            self.injected["error_frames"] += self.cfg.can_error_burst
            f.detail["frames"] = self.cfg.can_error_burst
        elif f.kind == "bus_off":
            _inject_error_frames(bus, self.cfg.bus_off_burst, CAN_ERR_BUSOFF)
            self.injected["error_frames"] += self.cfg.bus_off_burst
            self.injected["bus_off"] += self.cfg.bus_off_burst
            f.detail["frames"] = self.cfg.bus_off_burst
        elif f.kind == "gnss_garbage":
            self.gnss.garbage_due += self.cfg.gnss_garbage_lines
            f.detail["lines"] = self.cfg.gnss_garbage_lines
            deadline = time.monotonic() + self.cfg.recover_within_s
            while self.gnss.garbage_due and time.monotonic() < deadline and not self.stop_event.is_set():
                time.sleep(0.05)
        elif f.kind == "gnss_disconnect":
            before = src.stats.disconnects if src is not None else 0
            self.gnss.unplug.set()
            deadline = time.monotonic() + self.cfg.recover_within_s
            while self.gnss.unplug.is_set() and time.monotonic() < deadline and not self.stop_event.is_set():
                time.sleep(0.05)
            f.detail["disconnects_seen"] = (src.stats.disconnects if src is not None else 0) - before
        elif f.kind == "mic_silence":
            deadline = time.monotonic() + self.cfg.recover_within_s + self.cfg.mic_outage_s
            while (not any(s[0] == f.at_audio_s for s in self.mic.silenced) and time.monotonic() < deadline
                   and not self.stop_event.is_set()):
                time.sleep(0.05)
            f.injected_wall_s = next((s[1] + time.time() - time.monotonic() for s in self.mic.silenced
                                      if s[0] == f.at_audio_s), f.injected_wall_s)
        f.ended_wall_s = time.time()

    def _await_recovery(self, f: _Fault) -> None:
        base = self._base() | {"t_end": f.ended_wall_s}
        deadline = time.monotonic() + self.cfg.recover_within_s
        src = self.gnss.source
        while time.monotonic() < deadline and not self.stop_event.is_set():
            rep = _read_report(self.app.health_path)
            if rep is not None and _recovered(f.kind, rep, src, base):
                f.recovered_after_s = round(max(0.0, rep["written_at_s"] - f.ended_wall_s), 2)
                f.detail["status_after"] = rep["status"]
                return
            time.sleep(0.2)


# ------------------------------------------------------------------------------------------------ the run
def run_soak(cfg: SoakConfig, work_dir: Path, progress: Any = None) -> dict[str, Any]:
    """Run the device for ``cfg.seconds`` of audio with the scheduled faults; the figures as a JSON-able dict."""
    from edge_assistant.agents.demo import demo_nmea
    from edge_assistant.app.runtime import App
    from edge_assistant.core.config import default_config

    work_dir.mkdir(parents=True, exist_ok=True)
    scene, pcm48 = scene_at_device_rate(cfg.commands, cfg.snr_db, cfg.seed)
    fifo = fifo_microphone(work_dir)
    bus = f"virtual:soak-{os.getpid()}-{next(_channels)}"
    gnss_link = work_dir / "gnss.tty"
    base = default_config()
    config = bench_config(work_dir, bus, gnss=replace(base.gnss, enabled=True, port=str(gnss_link)))
    schedule = fault_schedule(cfg, scene)
    rng = random.Random(cfg.seed + 1)
    events = EventRecord(keep_heard=2 * len(cfg.commands))

    rss: list[tuple[float, float, int]] = []
    gnss = _GnssFeed(gnss_link, demo_nmea(cache=config.paths.cache_dir / "demo"), cfg, rng)
    app = App(config, emit=events, environ={"RUNTIME_DIRECTORY": str(work_dir / "run")})
    t_load = time.perf_counter()
    mic = load = injector = None
    sampler_stop = threading.Event()
    try:
        ring = round(config.audio.ring_buffer_s * 16000)
        mic = _SoakMicrophone(fifo, pcm48, cfg, app, ring,
                              [f.at_audio_s for f in schedule if f.kind == "mic_silence"])
        mic.start()
        gnss.start()
        app.load()
        gnss.source = app.vehicle.gnss
        load_s = time.perf_counter() - t_load
        mic.go.set()
        load, demo_fps = start_can_load(app, bus, cfg.can_fps)
        injector = _FaultInjector(schedule, cfg, app, bus, gnss, mic)
        injector.start()
        sampler = start_sampler(app, rss, sampler_stop, cfg.sample_every_s, progress, "soak-sampler",
                                log=work_dir / SAMPLES_LOG, extra=lambda: _can_backlog(app, load))
        t_run = time.perf_counter()
        cpu0 = time.process_time()
        stats = app.run(for_s=cfg.seconds)
        wall = time.perf_counter() - t_run
        cpu = time.process_time() - cpu0
        injector.join(cfg.recover_within_s + 5.0)  # the last fault's recovery is still being watched
        sampler_stop.set()
        sampler.join(5.0)
        health = app.health()
        src = app.vehicle.gnss
        gnss_stats = {"lines_sent": gnss.lines_sent, "garbage_lines_sent": gnss.garbage_sent,
                      "unplugs": gnss.unplugs, "connects": src.stats.connects,
                      "disconnects": src.stats.disconnects, "open_failures": src.stats.open_failures,
                      "unexpected_errors": src.stats.unexpected_errors, "fixes": src.fix_count,
                      "nmea_lines": src.stats.nmea.lines, "nmea_errors": src.stats.nmea.errors,
                      "nmea_garbage": src.stats.nmea.garbage, "nmea_bad_checksum": src.stats.nmea.bad_checksum,
                      "overlong_lines": src.stats.overlong_lines}
        injected = dict(injector.injected)
    finally:
        sampler_stop.set()
        for th in (injector, load, gnss):
            if th is not None:
                th.stop_event.set()
                th.join(5.0)
        if mic is not None:
            mic.stop_event.set()
        app.close()
        if mic is not None:
            mic.join(5.0)
    dcfg = DeviceBenchConfig(seconds=cfg.seconds, speed=cfg.speed, can_fps=cfg.can_fps, commands=cfg.commands,
                             snr_db=cfg.snr_db, sample_every_s=cfg.sample_every_s,
                             warmup_fraction=cfg.warmup_fraction, seed=cfg.seed)
    out = _summary(dcfg, scene, events, stats, health, rss, wall, cpu, load_s, load, demo_fps)
    out["config"] |= {"fault_every_s": cfg.fault_every_s, "faults": list(cfg.faults), "seed": cfg.seed,
                      "mic_outage_s": cfg.mic_outage_s, "gnss_outage_s": cfg.gnss_outage_s,
                      "mic_late_s": cfg.mic_late_s}
    out["memory"] |= _slopes(rss, cfg.warmup_fraction)
    out["faults"] = _fault_summary(schedule, injected, gnss_stats, health, out["capture"], events.failing_health)
    out["gnss"] = gnss_stats
    out["health_end"] = {"status": health.status, "problems": list(health.problems)}
    return out


def _slopes(rss: list[tuple[float, float, int]], warmup_fraction: float) -> dict[str, Any]:
    warm = [r for r in rss if r[0] >= warmup_fraction * rss[-1][0]] if rss else []
    if len(warm) < 3 or warm[-1][0] <= warm[0][0]:
        return {"rss_slope_mb_per_h": None, "fds_growth_after_warmup": None}
    t = np.array([r[0] for r in warm]) / 3600.0
    return {"rss_slope_mb_per_h": round(float(np.polyfit(t, [r[1] for r in warm], 1)[0]), 2),
            "fds_growth_after_warmup": warm[-1][2] - warm[0][2], "fds_max": max(r[2] for r in rss)}


def _can_backlog(app: Any, load: Any) -> dict[str, int]:
    """Frames the bus reader has taken so far and the extra load's frames sent: when the host starves the
    reader, the virtual bus queues the difference in this process's memory (a SocketCAN socket would drop)."""
    reader = getattr(app.vehicle, "reader", None)
    return {"can_frames_read": reader.stats.frames if reader is not None else 0,
            "can_load_sent": load.sent if load is not None else 0}


def _fault_summary(schedule: list[_Fault], injected: dict[str, int], gnss: dict[str, Any], health: Any,
                   capture: dict[str, Any], failing_health: list[tuple[float, dict]]) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {}
    for f in schedule:
        k = by_kind.setdefault(f.kind, {"scheduled": 0, "injected": 0, "recovered": 0, "recovery_s_max": None})
        k["scheduled"] += 1
        if f.injected_wall_s is not None:
            k["injected"] += 1
        if f.recovered_after_s is not None:
            k["recovered"] += 1
            k["recovery_s_max"] = max(k["recovery_s_max"] or 0.0, f.recovered_after_s)
    v = health.vehicle
    # the microphone absent at start: READY comes before its first audio (an absent microphone is retried),
    # and until that first chunk the reports say "last chunk never"; those are the late microphone's
    failing = [(t, e) for t, e in failing_health
               if not all("last chunk never" in p for p in e.get("problems", ()))]
    silences = [(f.injected_wall_s, f.ended_wall_s) for f in schedule
                if f.kind == "mic_silence" and f.injected_wall_s is not None]
    unexplained = [e["problems"] for t, e in failing
                   if not any(a - 1.0 <= t <= (b or a) + 10.0 for a, b in silences)]
    return {
        "by_kind": by_kind,
        "counted": {
            "can_error_frames": {"injected": injected["error_frames"], "counted": v.get("error_frames")},
            "can_bus_off": {"injected": injected["bus_off"], "counted": v.get("bus_off")},
            "can_reconnects": v.get("reconnects"),
            "gnss_garbage_lines": {"injected": gnss["garbage_lines_sent"], "counted": gnss["nmea_errors"]},
            "gnss_disconnects": {"injected": gnss["unplugs"], "counted": gnss["disconnects"],
                                 "reconnected": gnss["connects"] - 1},
            "capture_reconnects": capture.get("reconnects"), "capture_overruns": capture.get("overruns"),
            "capture_xruns": capture.get("xruns"),
        },
        "failing_reports": len(failing), "failing_outside_mic_silence": unexplained[:10],
        "timeline": [{"kind": f.kind, "at_audio_s": f.at_audio_s, "recovered_after_s": f.recovered_after_s,
                      **f.detail} for f in schedule],
    }
