"""``edge-assistant bench e2e`` in small: two commands through the whole assistant, fast and in real time.

The figures belong to the benchmark; this checks what it reports: every exchange found, intents scored against
the words spoken, stages that add up, and in real time a reply that comes after the words it answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import skip_unless_ci

from edge_assistant.audio import speech_synth
from edge_assistant.bench.e2e import (
    E2eConfig,
    build_e2e_scene,
    run_fast,
    run_realtime,
    same_answers,
    summarise,
)
from edge_assistant.cli import main

CFG = E2eConfig(commands=("How much range do I have left?", "Set the fan to … level three"), voices=("en-gb",),
                snr_db=20.0, seed=1)


@pytest.fixture(autouse=True)
def _espeak() -> None:
    if not speech_synth.available():
        skip_unless_ci("espeak-ng is not installed (make test installs the Debian package)")


def _check(r: dict) -> None:
    assert r["exchanges"] == 2 and r["answered"] == 2 and r["unanswered"] == []
    assert r["correct_intents"] == sum(x["correct"] for x in r["per_exchange"])
    for x in r["per_exchange"]:
        # the reply comes after the words, and after the endpointing wait plus the recognition
        assert x["end_to_reply_ms"] >= x["endpoint_wait_ms"] + x["asr_ms"] - 1.0 > 0
    assert set(r["stage_ms"]) >= {"endpoint_wait", "asr", "intent", "agent"}
    assert all({"p50", "p95"} <= set(v) for v in r["stage_ms"].values())
    e = r["end_of_speech_to_reply_ms"]
    assert e["n"] == 2 and e["p50"] <= e["p95"]


def test_fast_run_scores_every_exchange() -> None:
    r = run_fast(CFG)
    _check(r)
    assert r["mode"] == "fast" and r["pauses_judged"] >= 2  # at least one pause per command was judged


def test_realtime_run_on_the_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        skip_unless_ci("pyalsaaudio is not installed (make setup installs it)")
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(tmp_path / "asound.conf"))  # the run writes it; restored after
    r = run_realtime(CFG, tmp_path / "rt")
    _check(r)
    assert r["capture"]["overruns"] == 0
    # the device's threads change nothing: the inline assistant on the samples it captured answers the same
    inline = r["inline_on_device_audio"]
    assert inline["same_answers"] and inline["differences"] == [], inline["differences"]
    assert inline["correct_intents"] == r["correct_intents"]


def test_answers_are_compared_exchange_by_exchange() -> None:
    def run(*answers: tuple[int, str, str]) -> dict:
        rows = [{"exchange": i, "heard": heard, "intent": intent, "slots": {}} for i, heard, intent in answers]
        return {"per_exchange": rows, "answered": len(rows), "correct_intents": 0}

    a = run((0, "How much range do I have left?", "vehicle.range"), (1, "Set the fan to level 3.", "climate.fan"))
    assert same_answers(a, a)["same_answers"]
    b = run((0, "How much range do I have left?", "vehicle.range"))
    d = same_answers(a, b)
    assert not d["same_answers"] and d["differences"] == [
        {"exchange": 1, "realtime": {"heard": "Set the fan to level 3.", "intent": "climate.fan", "slots": {}},
         "inline": None}]


def test_scoring_follows_the_words_spoken() -> None:
    from edge_assistant.intents import car_matcher

    scene = build_e2e_scene(E2eConfig(commands=("Set the temperature to twenty one degrees",), voices=("en-gb",),
                                      snr_db=None))
    seg = scene.segments[0]
    base = {"speech_start_s": seg.command_start_s, "speech_end_s": seg.command_end_s + 0.1, "heard": "",
            "detected_s": seg.command_end_s + 0.3, "asr_ms": 100.0}
    right = dict(base, intent="climate.set_temperature", slots={"temperature": 21, "unit": "celsius"})
    wrong = dict(base, intent="climate.set_temperature", slots={"temperature": 20, "unit": "celsius"})

    def ms(r: dict, s: object) -> float:
        return 400.0

    assert summarise(scene, [right], car_matcher(), ms)["correct_intents"] == 1
    r = summarise(scene, [wrong], car_matcher(), ms)
    assert r["correct_intents"] == 0 and r["wrong"][0]["expected_slots"]["temperature"] == 21
    assert summarise(scene, [], car_matcher(), ms)["unanswered"] == [seg.command]


def test_cli_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "e2e.json"
    assert main(["bench", "e2e", "--mode", "fast", "--command", "How much range do I have left?", "--voice", "en-gb",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["fast"]["exchanges"] == 1 and "end_of_speech_to_reply_ms" in r["fast"]
    assert r["config"]["device_config"] == "built-in demo" and r["fast"]["cut_off"] == []
    # the keys at the top, from the only run
    assert r["headline"] == "fast"
    assert all(r[k] == r["fast"][k] for k in ("exchanges", "correct_intents", "stage_ms", "end_of_speech_to_reply_ms"))


def test_a_device_config_changes_how_the_scene_is_run(tmp_path: Path) -> None:
    # without pause judgements the fan command ends after the usual trailing silence, not at a pause
    conf = tmp_path / "no-pauses.toml"
    conf.write_text("[endpoint]\npause_ms = 0\n")
    out = tmp_path / "e2e.json"
    assert main(["bench", "e2e", "--mode", "fast", "--command", "Set the fan to … level three", "--voice", "en-gb",
                 "--config", str(conf), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["config"]["device_config"] == str(conf)
    assert r["fast"]["pauses_judged"] == 0 and r["fast"]["end_reasons"] == {"silence": 1}
