"""``bench intent``: clean grammar sentences all come back, noise is repaired or refused (never a wrong
intent here), and real sentences that ask for nothing are not guessed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import skip_unless_ci

from edge_assistant.bench.intent import add_noise, negative_sentences, run_intent_bench
from edge_assistant.intents import car_matcher


def test_noise_is_seeded_and_changes_the_text() -> None:
    text = "set the temperature to 21 degrees"
    a = [add_noise(text, random.Random(5)) for _ in range(2)]
    assert a[0] == a[1]
    noisy = {add_noise(text, random.Random(s)) for s in range(20)}
    assert any("twenty-one" in n for n in noisy) and any(n != text for n in noisy)


def test_bench_on_the_car_grammar() -> None:
    res = run_intent_bench(car_matcher(), per_intent=4, seeds=(0, 1),
                           negatives=["play some jazz", "what is the capital of France"])
    assert res["sentences"] == res["intents"] * 4 * 2
    assert res["clean"]["intent_accuracy"] == res["clean"]["slot_accuracy"] == 1.0
    assert res["clean"]["mean_confidence"] == 1.0
    z = res["noisy"]
    assert z["wrong_intent"] == 0.0 and z["intent_accuracy"] + z["rejected"] == 1.0
    assert z["mean_confidence_accepted"] < 1.0
    assert res["negatives"] == {"sentences": 2, "false_accepts": []}
    assert res["match_ms"]["matches"] == 2 * res["sentences"] + 2


@pytest.mark.shared_data
def test_bench_cli_on_real_negatives(speech_data: Path, tmp_path: Path) -> None:
    from edge_assistant.cli import main

    folder = speech_data / "asr"
    if not (folder / "common_voice" / "transcripts.tsv").is_file():
        skip_unless_ci(f"real data not present: {folder}")
    out = tmp_path / "intent.json"
    assert main(["bench", "intent", "--per-intent", "2", "--seeds", "0", "--negatives", str(folder),
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["negatives"]["sentences"] == len(negative_sentences(folder)) > 0
    assert res["negatives"]["false_accepts"] == []  # real speech asking for nothing is not guessed
