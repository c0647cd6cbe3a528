"""``bench can``: throughput of the vehicle path vs a bare python-can + cantools loop, replay timing, full load.

1. **Throughput** (per log, one core, main thread): the frames of the log are queued on a python-can
   ``virtual`` bus, then drained and timed.
   *Ours*: :func:`~edge_assistant.vehicle.bus.receive_batch` (the BusReader's receive path) ->
   :meth:`FrameDecoder.feed_messages` -> :class:`VehicleState` (VSS mapping for the demo car, DBC
   names for the real logs: every signal of every known frame).
   Both loops are timed in CPU seconds of the measuring thread (``time.thread_time``): frames per
   second *of one core*, not disturbed by other processes sharing the machine.
   *Peer*: ``bus.recv()`` + ``Database.decode_message(id, data)`` for every frame (exceptions for
   unknown ids and short frames caught), no state. Runs alternate ours/peer ``repeats`` times; the best
   of each is kept (least disturbed by other load on the machine).
   **Both sides decode the same signals.** With a VSS mapping ours decodes only the mapped signals (and
   the multiplexer they depend on), so the peer gets a cantools database cut down to those same signals
   (messages with none are dropped: an unknown id to it, as to ours). That is the comparison a user of
   the product cares about: on the car the decoder runs with the vehicle's mapping, and the question is
   what reading those values costs with cantools instead. The demo log is also measured without the
   mapping (``demo_all_signals``: every DBC signal on both sides), as the real logs are. Each log reports
   both sides' signal counts (``signals``).
2. **Replay timing**: the demo log replayed at 1x onto the virtual bus while a python-can reader
   receives it; p50/p99 of |send time - due time|.
3. **Full load**: frames sent at ``full_load_fps`` (1 Mbit/s with 8-byte frames is ~8,700 frames/s) for
   ``full_load_s`` onto a virtual bus whose receive queue holds ``rx_queue_frames`` (like a socket
   buffer: a sender finding it full loses the frame). A :class:`BusReader` thread decodes with the
   demo mapping. Reported: frames sent/decoded/lost and the reader thread's CPU time / wall time.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CanBenchConfig:
    """Parameters of ``bench can``."""

    repeats: int = 5
    replay_s: float = 8.0
    full_load_fps: float = 8_700.0
    full_load_s: float = 5.0
    rx_queue_frames: int = 2_000
    demo_duration_s: float = 300.0


def _queue_frames(frames: list, channel: str):
    import can

    tx = can.Bus(interface="virtual", channel=channel)
    rx = can.Bus(interface="virtual", channel=channel)
    for m in frames:
        tx.send(m)
    tx.shutdown()
    return rx


def _ours(frames: list, dbcs, mapping, channel: str) -> tuple[float, float, object]:
    from edge_assistant.core.state import VehicleState
    from edge_assistant.vehicle.bus import receive_batch
    from edge_assistant.vehicle.codec import FrameDecoder

    dec = FrameDecoder(dbcs, mapping, VehicleState())
    rx = _queue_frames(frames, channel)
    n = len(frames)
    errors = []
    w0, t0 = time.perf_counter(), time.thread_time()
    got = 0
    while got < n:
        batch = receive_batch(rx, 512, 1.0, errors.append)
        if not batch:
            break
        dec.feed_messages(batch)
        got += len(batch)
    dt, wall = time.thread_time() - t0, time.perf_counter() - w0
    rx.shutdown()
    return got / dt, got / wall, dec


def _peer(frames: list, db, channel: str) -> tuple[float, float]:
    rx = _queue_frames(frames, channel)
    n = len(frames)
    decode = db.decode_message
    w0, t0 = time.perf_counter(), time.thread_time()
    for _ in range(n):
        msg = rx.recv(1.0)
        try:  # noqa: SIM105 - a plain try is the cheapest form; contextlib.suppress would slow the peer
            decode(msg.arbitration_id, msg.data)
        except Exception:  # unknown id (KeyError) or a frame shorter than the DBC says
            pass
    dt, wall = time.thread_time() - t0, time.perf_counter() - w0
    rx.shutdown()
    return n / dt, n / wall


def _merged_database(dbcs):
    """One cantools Database holding the messages of all DBCs (first definition of an id wins), for the peer."""
    import cantools

    db = cantools.database.Database()
    seen = set()
    for d in dbcs:
        for m in d.database.messages:
            key = (m.frame_id, m.is_extended_frame)
            if key not in seen:
                seen.add(key)
                db.messages.append(m)
    db.refresh()
    return db


def decoded_signals(db, mapping=None) -> dict[tuple[int, bool], tuple[str, ...]]:
    """(frame id, extended) -> the DBC signal names our :class:`FrameDecoder` decodes with ``mapping``.

    Without a mapping: every signal of every message. With one: the mapped signals, found as the decoder
    finds them (message by name, else by frame id; unknown messages and signals skipped), plus the
    multiplexer signal of their message, which the decoder reads to know which signals a frame carries.
    """
    if mapping is None:
        return {(m.frame_id, m.is_extended_frame): tuple(s.name for s in m.signals) for m in db.messages}
    by_name = {m.name: m for m in db.messages}
    wanted: dict = {}
    for vm in mapping.signals:
        m = by_name.get(vm.message)
        if m is None:
            try:
                fid = int(vm.message, 0)
            except ValueError:
                continue
            m = next((x for x in db.messages if x.frame_id == fid and not x.is_extended_frame), None) or \
                next((x for x in db.messages if x.frame_id == fid), None)
        if m is not None and any(s.name == vm.signal for s in m.signals):
            wanted.setdefault(m.name, set()).add(vm.signal)
    return {(m.frame_id, m.is_extended_frame): tuple(s.name for s in m.signals if s.name in wanted[m.name] or s.is_multiplexer)
            for m in db.messages if m.name in wanted}


def _restricted_database(db, wanted: dict[tuple[int, bool], tuple[str, ...]]):
    """A copy of ``db`` holding only the ``wanted`` signals (messages without any are left out), for the peer."""
    import copy

    import cantools

    out = cantools.database.Database()
    for m in db.messages:
        names = wanted.get((m.frame_id, m.is_extended_frame))
        if not names:
            continue
        if len(names) == len(m.signals):
            out.messages.append(m)
            continue
        signals = [copy.deepcopy(s) for s in m.signals if s.name in names]
        out.messages.append(cantools.database.can.Message(
            frame_id=m.frame_id, name=m.name, length=m.length, signals=signals, is_extended_frame=m.is_extended_frame,
            is_fd=m.is_fd, strict=False))
    out.refresh()
    return out


def throughput(name: str, log_path, dbc_paths, mapping_path=None, repeats: int = 5, channel=None) -> dict:
    """Ours vs peer on one log (one bus of it when ``channel`` is given); returns a per-log result dict.

    Both decode the same signals: every signal of the DBCs without a mapping, the mapped ones with it
    (:func:`decoded_signals`; the peer's database is cut down to them).
    """
    from edge_assistant.vehicle.dbc import load_dbcs
    from edge_assistant.vehicle.logs import read_log
    from edge_assistant.vehicle.vss import load_mapping

    frames = [m for m in read_log(log_path, channel=channel) if not m.is_error_frame]
    dbcs = load_dbcs(list(dbc_paths))
    mapping = load_mapping(mapping_path) if mapping_path else None
    full = _merged_database(dbcs)
    wanted = decoded_signals(full, mapping)
    db = full if mapping is None else _restricted_database(full, wanted)
    ours_best = peer_best = ours_wall = peer_wall = 0.0
    dec = None
    channel = f"bench-can-{os.getpid()}-{name}"
    for _ in range(repeats):
        fps, wall, dec = _ours(frames, dbcs, mapping, channel)
        ours_best, ours_wall = max(ours_best, fps), max(ours_wall, wall)
        fps, wall = _peer(frames, db, channel)
        peer_best, peer_wall = max(peer_best, fps), max(peer_wall, wall)
    stats = dec.stats.as_dict()
    return {
        "log": name, "file": str(log_path), "channel": channel, "frames": len(frames), "mapping": str(mapping_path) if mapping_path else None,
        "decode_frames_per_s": round(ours_best), "reference_frames_per_s": round(peer_best),
        "ratio": round(ours_best / peer_best, 3) if peer_best else None,
        "wall_clock": {"decode_frames_per_s": round(ours_wall), "reference_frames_per_s": round(peer_wall),
                       "ratio": round(ours_wall / peer_wall, 3) if peer_wall else None},
        "signals": {"ours": sum(len(v) for v in wanted.values()), "peer": sum(len(m.signals) for m in db.messages),
                    "in_dbc": sum(len(m.signals) for m in full.messages),
                    "decoded_set": "mapped" if mapping is not None else "all"},
        "values_in_state": len(dec.state.snapshot()), "unknown_frames": stats["unknown_frames"],
        "dlc_mismatch_frames": sum(stats["dlc_mismatch"].values()),
    }


def replay_timing(log_path, seconds: float) -> dict:
    """Replay the first ``seconds`` of ``log_path`` at 1x; a python-can reader receives every frame."""
    import can

    from edge_assistant.vehicle.logs import read_log
    from edge_assistant.vehicle.replay import replay

    frames = []
    for m in read_log(log_path):
        if frames and m.timestamp - frames[0].timestamp > seconds:
            break
        frames.append(m)
    channel = f"bench-replay-{os.getpid()}"
    tx = can.Bus(interface="virtual", channel=channel)
    rx = can.Bus(interface="virtual", channel=channel)
    received = []
    reader = can.BufferedReader()
    notifier = can.Notifier(rx, [reader], timeout=0.05)
    stats = replay(frames, tx, speed=1.0)
    end = time.monotonic() + 2.0
    while len(received) < len(frames) and time.monotonic() < end:
        m = reader.get_message(0.1)
        if m is not None:
            received.append(m)
    notifier.stop()
    tx.shutdown()
    rx.shutdown()
    same = len(received) == len(frames) and all(
        a.arbitration_id == b.arbitration_id and bytes(a.data) == bytes(b.data) for a, b in zip(frames, received, strict=True))
    t = stats.timing_error_ms()
    return {"file": str(log_path), "seconds": seconds, "frames_sent": stats.frames_sent,
            "frames_received": len(received), "frames_identical": same, "p50": t["p50"], "p99": t["p99"],
            "max": t["max"]}


def full_load(dbc_path, mapping_path, frames: list, fps: float, seconds: float, rx_queue_frames: int) -> dict:
    """Send ``fps`` frames/s for ``seconds``; a BusReader thread decodes. Loss = frames the queue refused."""
    import can

    from edge_assistant.core.state import VehicleState
    from edge_assistant.vehicle import decoder_for
    from edge_assistant.vehicle.bus import BusReader

    channel = f"bench-load-{os.getpid()}"
    tx = can.Bus(interface="virtual", channel=channel)
    dec = decoder_for(dbc_path, mapping_path, VehicleState())
    reader = BusReader(lambda: can.Bus(interface="virtual", channel=channel, rx_queue_size=rx_queue_frames),
                       dec.feed_messages, name="load", poll_s=0.05).start()
    reader.wait_connected(5.0)
    sent = lost = 0
    n_total = int(fps * seconds)
    t0 = time.perf_counter()
    cpu_start = reader.stats.cpu_s
    i = 0
    while i < n_total:
        due = min(n_total, int((time.perf_counter() - t0) * fps) + 1)
        while i < due:  # send what is due, then sleep 1 ms (bursts of ~9 frames at 8,700/s)
            try:
                tx.send(frames[i % len(frames)], timeout=0)
                sent += 1
            except can.CanError:
                lost += 1
            i += 1
        time.sleep(0.001)
    wall = time.perf_counter() - t0
    end = time.monotonic() + 5.0
    while reader.stats.frames < sent and time.monotonic() < end:
        time.sleep(0.01)
    cpu = reader.stats.cpu_s - cpu_start
    reader.stop()
    tx.shutdown()
    return {"rate_frames_per_s": fps, "seconds": round(wall, 3), "frames_sent": sent + lost,
            "frames_accepted": sent, "frames_decoded": dec.stats.frames, "frames_lost": (sent + lost) - dec.stats.frames,
            "reader_cpu_s": round(cpu, 4), "cpu_share_at_full_load": round(cpu / wall, 4),
            "rx_queue_frames": rx_queue_frames, "bus_faults": reader.stats.faults}


def run_can_bench(can_data: Path | None, cfg: CanBenchConfig = CanBenchConfig(), work_dir: Path | None = None,
                  progress=None) -> dict:
    """Run everything; ``can_data`` is ``../shared/data/can`` (real logs are skipped when it is None)."""
    import tempfile

    from edge_assistant.vehicle import write_demo_log

    with tempfile.TemporaryDirectory(prefix="bench-can-") as tmp:
        work = Path(work_dir or tmp)
        demo_log = work / "demo_drive.log"
        write_demo_log(demo_log, duration_s=cfg.demo_duration_s, seed=1)
        return _run(can_data, cfg, demo_log, progress)


def _run(can_data: Path | None, cfg: CanBenchConfig, demo_log: Path, progress) -> dict:
    from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING
    from edge_assistant.vehicle.logs import read_log

    jobs = [("demo", demo_log, [DEMO_DBC], DEMO_MAPPING, None),  # the product's path: mapped signals, both sides
            ("demo_all_signals", demo_log, [DEMO_DBC], None, None)]  # every DBC signal, both sides
    if can_data is not None:
        kona = can_data / "kona_ev/230112-7-2019-pcan-ccan-power-off-on-ready-off.csv"
        jobs = [
            ("tesla_candump", can_data / "tesla_model_s/candump.log",
             [can_data / "tesla_model_s/tesla_powertrain.dbc"], None, None),
            # one capture of two buses: P-CAN (GVRET bus 0) and C-CAN (bus 1), each with its own DBC
            ("kona_pcan_csv", kona, [can_data / "kona_ev/pcan.dbc"], None, "0"),
            ("kona_ccan_csv", kona, [can_data / "kona_ev/hyundai_can.dbc"], None, "1"),
        ] + jobs
    logs = []
    for name, path, dbcs, mapping, channel in jobs:
        logs.append(throughput(name, path, dbcs, mapping, cfg.repeats, channel))
        if progress:
            progress(f"throughput {name}")
    timing = replay_timing(demo_log, cfg.replay_s)
    if progress:
        progress("replay timing")
    demo_frames = list(read_log(demo_log))
    load = full_load(DEMO_DBC, DEMO_MAPPING, demo_frames, cfg.full_load_fps, cfg.full_load_s, cfg.rx_queue_frames)
    if progress:
        progress("full load")
    worst = min(logs, key=lambda r: r["ratio"] or 0.0)
    return {
        "decode_frames_per_s": worst["decode_frames_per_s"],
        "reference_frames_per_s": worst["reference_frames_per_s"],
        "ratio_to_reference": worst["ratio"],
        "decode_log": worst["log"],
        "replay_timing_error_ms": {"p50": timing["p50"], "p99": timing["p99"]},
        "frames_sent": load["frames_sent"],
        "frames_decoded": load["frames_decoded"],
        "frames_lost": load["frames_lost"],
        "cpu_share_at_full_load": load["cpu_share_at_full_load"],
        "logs": logs,
        "replay": timing,
        "full_load": load,
        "targets": {"decode_frames_per_s": 100_000, "ratio_to_reference": 0.8, "frames_lost": 0,
                    "cpu_share_at_full_load": 0.10},
        "machine": {"cpus": os.cpu_count(), "arch": platform.machine(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": cfg.__dict__,
        "threads": threading.active_count(),
    }
