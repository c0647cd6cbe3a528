"""Trouble codes polled over UDS from virtual ECUs on a python-can virtual bus, through udsoncan/can-isotp."""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace

import pytest

from edge_assistant.app.dtc_poller import DtcChange, DtcPoller
from edge_assistant.core.config import EcuSettings, default_config
from edge_assistant.diagnostics.demo import demo_ecus
from edge_assistant.vehicle.simulate import CONFIRMED, PENDING, TEST_FAILED

_channels = itertools.count()


@pytest.fixture
def channel() -> str:
    return f"dtc-poller-{next(_channels)}"


def _config(channel: str, *extra: EcuSettings, interval_s: float = 3600.0):
    base = default_config()
    diag = replace(base.diagnostics, bus=f"virtual:{channel}", interval_s=interval_s, request_timeout_s=1.0,
                   ecus=base.diagnostics.ecus + extra)
    return replace(base, vehicle=replace(base.vehicle, bus=f"virtual:{channel}"), diagnostics=diag)


class Codes:
    """What the virtual BMS reports; changed by the test between polls."""

    def __init__(self) -> None:
        self.now: list[tuple[str, int]] = []

    def __call__(self) -> list[tuple[str, int]]:
        return list(self.now)


def test_poll_reports_codes_with_their_age_and_every_change(channel: str) -> None:
    codes, changes = Codes(), []
    lock = threading.Lock()

    def on_change(c: DtcChange) -> None:
        with lock:
            changes.append((c.ecu, c.code, c.change))

    poller = DtcPoller(_config(channel), on_change=on_change)
    with demo_ecus(None, codes, channel=channel):
        poller.poll_once()
        first = poller.readout()
        assert first is not None and first.entries == ()
        assert "BMS (0x7EC)" in first.source and "VCU (0x7E8)" in first.source
        codes.now = [("P0AA6", TEST_FAILED | PENDING)]
        poller.poll_once()
        codes.now = [("P0AA6", TEST_FAILED | PENDING | CONFIRMED)]
        poller.poll_once()
        got = poller.readout()
        codes.now = []
        poller.poll_once()
    assert [(e.code, e.status, e.ecu_id) for e in got.entries] == [("P0AA6", TEST_FAILED | PENDING | CONFIRMED, 0x7EC)]
    assert changes == [("BMS", "P0AA6", "appeared"), ("BMS", "P0AA6", "changed"), ("BMS", "P0AA6", "cleared")]
    assert poller.stats.polls == 4 and poller.stats.ecu_failures == 0


def test_an_ecu_that_does_not_answer_is_counted_and_the_others_still_read(channel: str) -> None:
    silent = EcuSettings("ABS", 0x7E1, 0x7E9)
    codes = Codes()
    codes.now = [("P0AA6", TEST_FAILED)]
    poller = DtcPoller(_config(channel, silent))
    with demo_ecus(None, codes, channel=channel):
        poller.poll_once()
    got = poller.readout()
    assert [e.code for e in got.entries] == ["P0AA6"]
    assert poller.stats.ecu_failures == 1 and "ABS" in poller.stats.last_error


def test_on_demand_request_runs_a_fresh_round_and_stop_is_prompt(channel: str) -> None:
    codes = Codes()
    poller = DtcPoller(_config(channel))  # interval one hour: only requests poll after the first round
    with demo_ecus(None, codes, channel=channel):
        poller.start()
        try:
            assert poller.request(wait_s=10.0)
            assert poller.readout().entries == ()
            codes.now = [("P0AA6", TEST_FAILED)]
            assert poller.request(wait_s=10.0)
            assert [e.code for e in poller.readout().entries] == ["P0AA6"]
        finally:
            assert poller.stop(timeout_s=5.0)


def test_a_round_started_at_the_wake_word_serves_the_question(channel: str) -> None:
    """The runtime starts a read at the wake word and, for a warnings question, waits for that same round: a
    code set before the wake word is in the answer, and the wait ends with the round."""
    from edge_assistant.app.runtime import _OnDemandRouter
    from edge_assistant.intents import Intent

    class Router:
        def answer(self, intent: Intent) -> object:
            return poller.readout()

    codes = Codes()
    poller = DtcPoller(_config(channel))
    router = _OnDemandRouter(Router(), poller)
    with demo_ecus(None, codes, channel=channel):
        poller.start()
        try:
            assert poller.request(wait_s=10.0)  # the first round, before the code
            codes.now = [("P0AA6", TEST_FAILED)]
            router.prefetch()  # the wake word
            readout = router.answer(Intent("vehicle.warnings", "what does the warning light mean", 1.0))
            assert [e.code for e in readout.entries] == ["P0AA6"]
            rounds = poller.stats.polls
            router.answer(Intent("vehicle.range", "how far can I drive", 1.0))  # no wait, no new round
            assert poller.stats.polls == rounds
        finally:
            assert poller.stop(timeout_s=5.0)


def test_disabled_or_empty_diagnostics_start_no_thread(channel: str) -> None:
    cfg = _config(channel)
    off = replace(cfg, diagnostics=replace(cfg.diagnostics, enabled=False))
    poller = DtcPoller(off).start()
    assert poller._thread is None and poller.readout() is None and poller.stop()
