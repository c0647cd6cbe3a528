"""The benchmarks' event record keeps figures, not events (it shares the process whose memory it measures)."""

from __future__ import annotations

import threading

from edge_assistant.bench.device import EventRecord, _pct


def _reply(n: int) -> dict:
    return {"event": "reply", "intent": ("climate.set_temperature", "vehicle.range")[n % 2],
            "heard": f"command {n}", "reply_latency_ms": float(n % 100), "asr_ms": float(n % 50), "text": "x" * 200}


def test_replies_become_counts_and_figures_and_only_the_first_heard_are_kept() -> None:
    record = EventRecord(keep_heard=4)
    for n in range(10_000):
        record({"event": "wake", "score": 0.9})
        record(_reply(n))
    record({"event": "health", "status": "ok"})
    record({"event": "health", "status": "failing", "problems": ["audio not flowing"]})
    assert record.counts["reply"] == 10_000 and record.counts["wake"] == 10_000 and record.counts["health"] == 2
    assert record.intents == {"climate.set_temperature": 5_000, "vehicle.range": 5_000}
    assert record.heard == [["command 0", "climate.set_temperature"], ["command 1", "vehicle.range"],
                            ["command 2", "climate.set_temperature"], ["command 3", "vehicle.range"]]
    assert len(record.reply_latency_ms) == 10_000 and record.reply_latency_ms.itemsize == 8
    assert _pct(record.reply_latency_ms, 50) == 49.5 and _pct(record.asr_ms, 95) == 47.0
    assert [e["problems"] for _, e in record.failing_health] == [["audio not flowing"]]
    assert _pct(EventRecord(keep_heard=0).asr_ms, 50) is None


def test_failing_reports_are_bounded_and_threads_lose_nothing() -> None:
    record = EventRecord(keep_heard=0, keep_failing=3)

    def feed() -> None:
        for n in range(2_000):
            record(_reply(n))
            record({"event": "health", "status": "failing", "problems": ["x"]})

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert record.counts["reply"] == 8_000 and len(record.asr_ms) == 8_000
    assert len(record.failing_health) == 3 and record.counts["health"] == 8_000
