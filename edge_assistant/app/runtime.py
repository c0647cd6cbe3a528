"""The assistant as the device runs it: microphone → pipeline → responder, with the vehicle side beside it.

Threads, and what each may wait for:

* **capture** (:mod:`edge_assistant.audio.capture`): reads ALSA into a bounded ring buffer; it never waits for
  anyone, so a slow stage shows up as counted overruns, never as a stalled microphone;
* **pipeline** (the thread that calls :meth:`App.run`): wake word and endpointing on each chunk (a few ms per
  80 ms chunk), kicks the systemd watchdog while audio flows or an absent microphone is being retried (not
  when the capture is stuck in a driver, nor when this thread hangs), writes the health report once a
  second; a finished command is handed to the responder queue, not answered here;
* **end-of-turn** (:class:`~edge_assistant.pipeline.end_of_turn.JudgeThread`): recognises a command at its
  pauses, speculatively; the pipeline goes on meanwhile, keeping the VAD windows and wake words that come in,
  and applies the decision at the pause once it is in (it waits only if the command would leave the
  endpointer's buffer);
* **responder**: ASR → intent → agent for one command at a time, so a 2 s transcription never holds up the audio;
  with ``[speech]`` enabled it also synthesises the reply (espeak-ng) and queues it for playback;
* **speaker** (:mod:`edge_assistant.audio.playback`): plays replies; its started/ended reports reach the
  pipeline thread through a queue, where they switch wake-word suppression on and off and open the follow-up
  window (no wake word needed) after a reply was spoken to the end; a barge-in wake word stops it;
* the vehicle side's producers (:mod:`edge_assistant.app.vehicle_side`) and the uplink's MQTT threads.

Every event goes to ``emit(dict)`` (``run --json`` prints one per line): ``ready``, ``wake``, ``command``,
``listen_timeout``, ``reply``, ``speech`` (playback started, finished, interrupted or failed), ``follow_up``,
``health`` (on a change of verdict or problems), ``audio`` (capture state changes), ``stopped``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.core.config import DeviceConfig

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
HEALTH_EVERY_S = 1.0
UPLINK_HEALTH_EVERY_S = 60.0
RESPONDER_QUEUE = 4  #: commands waiting for ASR; more than this means the device is far behind: the oldest waits
SPEECH_DRAIN_S = 30.0  #: at the end of a ``--for`` run, how long the last reply may still play
DTC_ON_DEMAND_WAIT_S = 3.0  #: how long a question about warnings waits for a fresh trouble-code read
ON_DEMAND_INTENTS = frozenset({"vehicle.warnings", "vehicle.status"})


@dataclass
class RunStats:
    """Counters of one run (also in the health report's ``pipeline`` part)."""

    chunks: int = 0
    samples: int = 0
    wakes: int = 0
    commands: int = 0
    replies: int = 0
    listen_timeouts: int = 0
    responder_errors: int = 0
    spoken: int = 0  # replies played to the end
    speech_interrupted: int = 0
    speech_errors: int = 0
    suppressed_wakes: int = 0  # wake detections dropped while the assistant spoke
    judge_errors: int = 0  # pause judgements that failed (the trailing silence then ended the command)
    barge_ins: int = 0
    follow_ups: int = 0
    max_chunk_ms: float = 0.0  # the slowest wake+endpoint step

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["audio_s"] = round(self.samples / SAMPLE_RATE_HZ, 3)
        d["max_chunk_ms"] = round(self.max_chunk_ms, 2)
        return d


class _OnDemandRouter:
    """Before a question about warnings, makes sure the trouble codes are fresh (waiting a bounded time). The
    read starts at the wake word (:meth:`prefetch`), so it runs while the driver speaks and is usually done
    by the time the question is understood; without one it starts at the question."""

    def __init__(self, router: Any, poller: Any) -> None:
        self.router = router
        self.poller = poller
        self._round: int | None = None

    def prefetch(self) -> None:
        if self.poller is not None:
            self._round = self.poller.start_round()

    def answer(self, intent: Any) -> Any:
        target, self._round = self._round, None
        if self.poller is not None and intent.name in ON_DEMAND_INTENTS:
            self.poller.wait_round(target if target is not None else self.poller.start_round(), DTC_ON_DEMAND_WAIT_S)
        return self.router.answer(intent)


class App:
    """The whole assistant from one :class:`DeviceConfig`. :meth:`load` then :meth:`run`; :meth:`close` always."""

    def __init__(self, config: DeviceConfig, *, emit: Callable[[dict[str, Any]], None],
                 audio_device: str | None = None, capture: Any = None,
                 environ: dict[str, str] | None = None) -> None:
        from edge_assistant.app.health import HEALTH_FILE, runtime_dir

        self.config = config
        self.emit = emit
        self.audio_device = audio_device
        self.capture = capture
        self.stats = RunStats()
        self.health_path = runtime_dir(config.paths.state_dir, environ) / HEALTH_FILE
        self.started_mono = time.monotonic()
        self.models_loaded = False
        self.vehicle = None
        self.uplink = None
        self.assistant = None
        self._responder = None
        self._on_demand: _OnDemandRouter | None = None
        self._commands: queue.Queue = queue.Queue(RESPONDER_QUEUE)
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._emit_lock = threading.Lock()
        self._last_verdict: tuple[str, tuple[str, ...]] | None = None
        self._overruns_reported = 0
        self._judge_errors_reported = 0
        self._capture_state = ""
        self.speech = None
        self._speech_events: queue.SimpleQueue = queue.SimpleQueue()  # speaker thread -> pipeline thread

    # ---- building --------------------------------------------------------------------------------------
    def load(self) -> None:
        """Load every model, start the vehicle side and the uplink, open the microphone. A missing or corrupt
        model fails here, before any audio."""
        from edge_assistant.app.assemble import build_agents, build_assistant, build_stages
        from edge_assistant.app.vehicle_side import VehicleSide
        from edge_assistant.pipeline import AssistantConfig

        cfg = self.config
        stages = build_stages(cfg)
        self.models_loaded = True
        self.uplink = _start_uplink(cfg)
        self.vehicle = VehicleSide(cfg, on_dtc_change=self._publish_dtc).start()
        router = build_agents(cfg, self.vehicle)
        self._trip = getattr(router.travel, "trip", None)
        sp = cfg.speech
        self._on_demand = _OnDemandRouter(router, self.vehicle.poller)
        self.assistant = build_assistant(cfg, stages, self._on_demand,
                                         assistant_config=AssistantConfig(
            speech_tail_s=sp.tail_ms / 1000.0, barge_in_threshold=sp.barge_in_threshold if sp.barge_in else None),
                                         defer_answers=True, judge_in_background=True)
        if sp.enabled:
            from edge_assistant.app.speech_out import SpeechOut

            self.speech = SpeechOut(sp, on_event=self._speech_events.put)
        self._responder = self.assistant.responder
        self._worker = threading.Thread(target=self._respond_loop, name="responder", daemon=True)
        self._worker.start()
        if self.capture is None:
            from edge_assistant.audio.capture import MicrophoneCapture

            self.capture = MicrophoneCapture(cfg.audio, device=self.audio_device)
        self.capture.start()

    # ---- running ---------------------------------------------------------------------------------------
    def run(self, for_s: float | None = None, notifier: Any = None) -> RunStats:
        """Process audio until :meth:`stop` (or ``for_s`` seconds of captured audio); answer what is pending."""
        from edge_assistant.audio.capture import RECONNECTING
        from edge_assistant.core.sdnotify import WatchdogKicker

        watchdog = WatchdogKicker.from_env(notifier) if notifier is not None else None
        ready = False
        next_health = 0.0
        limit = None if for_s is None else int(round(for_s * SAMPLE_RATE_HZ))
        while not self._stop.is_set():
            chunk = self.capture.read(0.2)
            got_audio = chunk is not None and chunk.size > 0
            if got_audio:
                if limit is not None:
                    chunk = chunk[: max(0, limit - self.stats.samples)]
                self._feed(chunk)
            # READY once audio flows, or once the microphone is known to be absent (it is retried; a restart
            # cannot plug it in, and the vehicle side and uplink keep working meanwhile; health says failing)
            if not ready and (got_audio or self.capture.state == RECONNECTING):
                ready, absent = True, not got_audio
                self._send({"event": "ready", "config": str(self.config.source or "built-in demo"),
                            "audio_device": self.audio_device or self.config.audio.device,
                            "microphone": "absent, retrying" if absent else "capturing",
                            "load_s": round(time.monotonic() - self.started_mono, 2)})
                if notifier is not None:
                    notifier.ready("listening for the wake word" if got_audio
                                   else "microphone absent; retrying")
            # the watchdog is fed from this thread while the capture makes progress: a hung pipeline or a
            # capture stuck inside a driver starves it and systemd restarts the service
            if ready and watchdog is not None and (got_audio or self.capture.is_live()):
                watchdog.kick()
            now = time.monotonic()
            if now >= next_health:
                next_health = now + HEALTH_EVERY_S
                self._safe_health_tick()
            if limit is not None and self.stats.samples >= limit:
                break
        for ev in self.assistant.flush():
            self._pipeline_event(ev)
        self._drain_responder()
        if self.speech is not None and not self._stop.is_set():
            self.speech.wait_idle(SPEECH_DRAIN_S)  # let the last reply be heard
        self._handle_speech_events(follow_up=False)
        self._safe_health_tick()
        return self.stats

    def stop(self) -> None:
        """Ask :meth:`run` to return (safe from a signal handler or another thread)."""
        self._stop.set()

    def close(self) -> None:
        """Stop every thread and close every device; safe to call twice."""
        self._stop.set()
        if self.assistant is not None:
            self.assistant.close()
        if self._worker is not None:
            self._commands.put(None)
            self._worker.join(30.0)
            self._worker = None
        if self.speech is not None:
            self.speech.close()
            self._handle_speech_events(follow_up=False)
        if self.capture is not None:
            self.capture.stop()
        if self.vehicle is not None:
            self.vehicle.stop()
        if self.uplink is not None:
            self._publish_trip()
            self.uplink.stop(drain_timeout_s=1.0)
        self._send({"event": "stopped", **self.stats.as_dict()})

    # ---- the pipeline thread ----------------------------------------------------------------------------
    def _feed(self, chunk: np.ndarray) -> None:
        self._handle_speech_events()
        t0 = time.perf_counter()
        events = self.assistant.feed(chunk)
        self.stats.suppressed_wakes = self.assistant.suppressed_wakes
        self.stats.judge_errors = self.assistant.judge_errors
        self.stats.max_chunk_ms = max(self.stats.max_chunk_ms, (time.perf_counter() - t0) * 1e3)
        self.stats.chunks += 1
        self.stats.samples += int(chunk.size)
        for ev in events:
            self._pipeline_event(ev)

    def _pipeline_event(self, ev: Any) -> None:
        if ev.kind == "command":
            self.stats.commands += 1
            try:
                self._commands.put_nowait(ev)
            except queue.Full:
                log.warning("%d commands waiting for speech recognition; this one waits too", RESPONDER_QUEUE)
                self._commands.put(ev)
        elif ev.kind == "wake":
            self.stats.wakes += 1
            self._on_demand.prefetch()  # fresh trouble codes while the driver speaks
            if getattr(ev, "barge_in", False):
                self.stats.barge_ins += 1
                if self.speech is not None:
                    self.speech.stop()
        elif ev.kind == "follow_up":
            self.stats.follow_ups += 1
        elif ev.kind == "listen_timeout":
            self.stats.listen_timeouts += 1
        self._send(ev.to_dict())

    def _drain_responder(self) -> None:
        self._commands.join()

    def _handle_speech_events(self, follow_up: bool = True) -> None:
        """On the pipeline thread: the speaker's reports switch suppression and open the follow-up window."""
        while True:
            try:
                pe = self._speech_events.get_nowait()
            except queue.Empty:
                return
            if pe.state == "started":
                self.assistant.speaking_started()
            else:
                self.assistant.speaking_ended()
                if pe.state == "finished":
                    self.stats.spoken += 1
                elif pe.state == "interrupted":
                    self.stats.speech_interrupted += 1
                else:
                    self.stats.speech_errors += 1
            ev: dict[str, Any] = {"event": "speech", "state": pe.state, "time_s": round(self.assistant.time_s, 3),
                                  "duration_s": round(pe.duration_s, 3)}
            if pe.state != "started":
                ev["played_s"] = round(pe.played_s, 3)
            if pe.error:
                ev["error"] = pe.error
            self._send(ev)
            follow_s = self.config.speech.follow_up_s
            if pe.state == "finished" and follow_s > 0 and follow_up and not self._stop.is_set():
                at_s = self.assistant.time_s + self.config.speech.tail_ms / 1000.0
                for fev in self.assistant.follow_up(at_s, follow_s):
                    self._pipeline_event(fev)

    # ---- the responder thread ---------------------------------------------------------------------------
    def _respond_loop(self) -> None:
        while True:
            ev = self._commands.get()
            try:
                if ev is None:
                    return
                reply = self._responder.respond(ev.utterance, ev.heard)
                self.stats.replies += 1
                self._send(reply.to_dict())
                if self.speech is not None:
                    self.speech.say(reply.answer.text, tag=reply.speech_end_s)
            except Exception as exc:  # noqa: BLE001 - one failed answer must not end the assistant
                self.stats.responder_errors += 1
                log.exception("answering the command at %.2f s failed", ev.utterance.start_s)
                self._send({"event": "error", "where": "responder", "error": f"{type(exc).__name__}: {exc}"})
            finally:
                self._commands.task_done()

    # ---- health -----------------------------------------------------------------------------------------
    def health(self):
        """The current :class:`~edge_assistant.app.health.HealthReport`."""
        from edge_assistant.app.health import HealthReport, judge

        cs = self.capture.stats() if self.capture is not None else None
        audio = _capture_dict(cs)
        new_overruns = max(0, audio.get("overruns", 0) - self._overruns_reported)
        self._overruns_reported = audio.get("overruns", 0)
        new_judge_errors = self.stats.judge_errors - self._judge_errors_reported
        self._judge_errors_reported = self.stats.judge_errors
        vehicle = self.vehicle.health().to_dict() if self.vehicle is not None else None
        status, problems = judge(audio, self.models_loaded, vehicle, new_overruns, new_judge_errors)
        uplink = {"enabled": bool(self.uplink and self.uplink.config.enabled)}
        if self.uplink is not None and self.uplink.config.enabled:
            uplink |= asdict(self.uplink.stats)
        return HealthReport(status, problems, time.time(), time.monotonic() - self.started_mono, audio,
                            {"loaded": self.models_loaded, "wake": [w.model for w in self.config.wake]},
                            vehicle or {}, uplink, self.stats.as_dict())

    def _safe_health_tick(self) -> None:
        try:
            self._health_tick()
        except Exception:  # noqa: BLE001 - a fault in reporting must not stop the audio
            log.exception("health report failed")

    def _health_tick(self) -> None:
        from edge_assistant.app.health import write_health

        report = self.health()
        try:
            write_health(self.health_path, report)
        except OSError as exc:
            log.warning("health report not written to %s: %s", self.health_path, exc)
        verdict = (report.status, report.problems)
        if verdict != self._last_verdict:
            self._last_verdict = verdict
            self._send({"event": "health", "status": report.status, "problems": list(report.problems)})
        state = report.audio.get("state", "")
        if state != self._capture_state:
            self._capture_state = state
            self._send({"event": "audio", "state": state, "error": report.audio.get("last_error") or None})
        self._maybe_publish_health(report)

    _next_uplink_health = 0.0

    def _maybe_publish_health(self, report) -> None:
        if self.uplink is None or not self.uplink.config.enabled or time.monotonic() < self._next_uplink_health:
            return
        self._next_uplink_health = time.monotonic() + UPLINK_HEALTH_EVERY_S
        data: dict[str, Any] = {"uptime_s": round(report.uptime_s, 1),
                                "can_error_frames": int(report.vehicle.get("error_frames", 0))}
        q = self.uplink.queue
        if q is not None:
            data |= {"uplink_queued": len(q), "uplink_dropped": q.dropped}
        data |= _system_figures(self.config.paths.state_dir)
        try:
            self.uplink.publish("health", data)
        except Exception:  # noqa: BLE001 - the uplink must never stop the assistant
            log.exception("health message not queued")

    def _publish_dtc(self, change: Any) -> None:
        if self.uplink is None or not self.uplink.config.enabled:
            return
        data: dict[str, Any] = {"ecu": change.ecu, "code": change.code, "change": change.change}
        if change.status is not None:
            data |= {"status": change.status, "mil": bool(change.status & 0x80)}
        try:
            self.uplink.publish("dtc", data)
        except Exception:  # noqa: BLE001
            log.exception("trouble-code message not queued")

    _trip = None

    @property
    def trip(self) -> Any:
        """The Travel Companion's trip computer (what the ``trip`` message at shutdown reports), or None."""
        return self._trip

    def _publish_trip(self) -> None:
        """The trip so far as a ``trip`` message: the service stops when the car is switched off (the ECU
        loses ignition power), so this is the end of the drive. Queued on disk, sent on the next connection."""
        trip = self._trip
        if trip is None or not self.uplink.config.enabled or trip.span_s is None:
            return
        s = trip.stats()
        if s.distance_km <= 0:
            log.info("no trip to report (the car did not move)")
            return
        start, end = trip.span_s
        data: dict[str, Any] = {"trip_id": f"{self.config.vehicle.id}-{start:.0f}", "start_ts_s": round(start, 3),
                                "end_ts_s": round(end, 3), "distance_km": round(s.distance_km, 3)}
        if s.energy_kwh is not None:
            data["energy_kwh"] = round(s.energy_kwh, 3)
        if s.avg_speed_moving_kmh is not None:
            data["avg_speed_kmh"] = round(s.avg_speed_moving_kmh, 1)
        if s.consumption_kwh_per_100km is not None:
            data["consumption_kwh_per_100km"] = round(s.consumption_kwh_per_100km, 2)
        if trip.soc_span_pct is not None:
            data["soc_start_pct"], data["soc_end_pct"] = (round(min(100.0, max(0.0, v)), 1) for v in trip.soc_span_pct)
        try:
            self.uplink.publish("trip", data)
        except Exception:  # noqa: BLE001 - a schema refusal is logged; the queue and shutdown go on
            log.exception("trip summary not queued")

    def _send(self, event: dict[str, Any]) -> None:
        with self._emit_lock:
            self.emit(event)


def _capture_dict(stats: Any) -> dict[str, Any]:
    """The capture's figures for the health report (:class:`~edge_assistant.audio.capture.CaptureStats`)."""
    if stats is None:
        return {"state": "stopped", "last_chunk_age_s": None}
    keys = ("state", "device", "samples_captured", "buffered_samples", "overruns", "overrun_samples", "xruns",
            "reconnects", "failed_opens", "retry_delay_s", "last_error", "device_rate_hz", "device_channels",
            "device_format", "thread_cpu_s")
    d = {k: getattr(stats, k) for k in keys if hasattr(stats, k)}
    age = stats.last_chunk_age_s
    d["last_chunk_age_s"] = None if age is None else round(age, 3)
    if isinstance(d.get("thread_cpu_s"), float):
        d["thread_cpu_s"] = round(d["thread_cpu_s"], 3)
    return d


def _start_uplink(config: DeviceConfig):
    from edge_assistant.app.stage_configs import uplink_config
    from edge_assistant.uplink.client import Uplink

    if not config.uplink.enabled:
        return None
    up = Uplink(uplink_config(config))
    up.start()
    return up


def _system_figures(data_dir: Path) -> dict[str, float]:
    """Load, available memory and free disk for the uplink's health message (what Linux offers cheaply)."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        out["load_1m"] = round(os.getloadavg()[0], 2)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    out["mem_available_mb"] = round(int(line.split()[1]) / 1024, 1)
                    break
    except (OSError, ValueError):
        pass
    try:
        st = os.statvfs(data_dir if data_dir.exists() else "/")
        out["disk_free_mb"] = round(st.f_bavail * st.f_frsize / 2**20, 1)
    except OSError:
        pass
    return out
