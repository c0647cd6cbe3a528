"""The end-of-turn judge's own thread: one judgement at a time, in order, errors handed back, a clean close."""

from __future__ import annotations

import threading

import pytest

from edge_assistant.pipeline.end_of_turn import JudgeThread


def test_judgements_run_in_order_off_the_callers_thread() -> None:
    judge = JudgeThread()
    try:
        seen: list[tuple[int, str]] = []
        futures = [judge.submit(lambda i=i: seen.append((i, threading.current_thread().name)) or f"d{i}")
                   for i in range(5)]
        assert [f.result(timeout=10) for f in futures] == [f"d{i}" for i in range(5)]
        assert [i for i, _ in seen] == list(range(5))
        assert {name for _, name in seen} == {"end-of-turn"}
    finally:
        judge.close()


def test_an_error_reaches_the_caller_through_the_future() -> None:
    judge = JudgeThread()
    try:
        def broken() -> str:
            raise RuntimeError("the recogniser failed")

        with pytest.raises(RuntimeError, match="the recogniser failed"):
            judge.submit(broken).result(timeout=10)
        assert judge.submit(lambda: "end").result(timeout=10) == "end"  # and the thread goes on
    finally:
        judge.close()


def test_close_finishes_the_judgement_under_way_and_cancels_the_rest() -> None:
    judge = JudgeThread()
    started, release = threading.Event(), threading.Event()
    running = judge.submit(lambda: (started.set(), release.wait(10), "end")[2])
    assert started.wait(10)
    queued = judge.submit(lambda: "never")
    closer = threading.Thread(target=judge.close)
    closer.start()
    assert judge._closed.wait(10)  # closing has begun while the first judgement still runs
    release.set()
    closer.join(10)
    assert not closer.is_alive()
    assert running.result(timeout=1) == "end"
    assert queued.cancelled()
