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


def test_grammar_expression_accepts_every_sampled_car_sentence(tmp_path: Path) -> None:
    """The car grammar, compiled for the recogniser without expanding it, accepts its own sentences."""
    from edge_assistant.asr.grammar_bias import GrammarBias
    from edge_assistant.asr.model_cache import load_whisper_files
    from edge_assistant.asr.tokenizer import WhisperTokenizer
    from edge_assistant.bench.intent import load_labels
    from edge_assistant.core.errors import DataFormatError, ModelFileError
    from edge_assistant.intents.sample import sample_grammar
    from edge_assistant.pipeline.grammar_link import grammar_expression

    try:
        files = load_whisper_files(None, int8=True)
    except ModelFileError as exc:
        skip_unless_ci(f"Whisper model cache not built ({exc})")
    tok = WhisperTokenizer(files.tokenizer_json, files.config_json, files.n_vocab)
    matcher = car_matcher()
    bias = GrammarBias(grammar_expression(matcher.grammar), tok)
    samples = sample_grammar(matcher.grammar, 6, seed=11)
    assert [s.text for s in samples if not bias.accepts_text(s.text)] == []
    assert not bias.accepts_text("what is the capital of France")
    # Every beginning of a sentence is a prefix of the grammar; a sentence is not one of its proper prefixes.
    for s in samples:
        words = s.text.split()
        assert all(bias.is_prefix(" ".join(words[:k])) for k in range(1, len(words) + 1)), s.text
    assert not bias.is_prefix("what is the capital")
    # Narrowed to known places: every sentence with a known place or none, and no sentence with another place.
    places = ("munich", "lake garda", "boston")
    narrowed = GrammarBias(grammar_expression(matcher.grammar, {"place": places}), tok)
    known = sample_grammar(matcher.grammar, 6, seed=11, wildcard_values=("Munich", "Boston"))
    assert [s.text for s in known if not narrowed.accepts_text(s.text)] == []
    other = sample_grammar(matcher.grammar, 6, seed=11, wildcard_values=("some music",))
    assert [s.text for s in other if narrowed.accepts_text(s.text) != (s.slots.get("place") != "some music")] == []
    assert not narrowed.accepts_text("navigate to some music") and narrowed.accepts_text("navigate to lake garda")
    bad = tmp_path / "labels.json"
    bad.write_text(json.dumps({"a.wav": {"slots": {}}}), encoding="utf-8")
    with pytest.raises(DataFormatError, match="a.wav"):
        load_labels(bad)
