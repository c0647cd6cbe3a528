"""Beam search and grammar-aware recognition: the real int8 Whisper, real tokenizer, espeak-ng speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import skip_unless_ci
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_assistant.asr.grammar_bias import (
    ANY,
    NUMBER,
    GrammarBias,
    GrammarBiasConfig,
    alt,
    names,
    opt,
    seq,
    top_k,
)
from edge_assistant.asr.recognizer import RecognizerConfig, WhisperRecognizer
from edge_assistant.audio.io import read_audio
from edge_assistant.core.errors import ConfigError, DataFormatError

TEMPLATES = [
    seq("set ", opt("the "), alt("temperature", "heating"), " to ", NUMBER, " degrees"),
    seq("navigate to ", ANY),
    seq("how much ", alt("charge", "battery"), " is left"),
]


@pytest.fixture(scope="module")
def bias(recognizer) -> GrammarBias:
    return GrammarBias(TEMPLATES, recognizer.tokenizer)


def _speech(text: str, voice: str = "en-us") -> np.ndarray:
    from edge_assistant.audio import speech_synth

    if not speech_synth.available():
        skip_unless_ci("espeak-ng is not installed")
    return speech_synth.synthesize(text, voice=voice)


def test_grammar_accepts_its_sentences_as_whisper_writes_them(bias) -> None:
    for text in ("Set the temperature to 21.5 degrees.", "set heating to 19 degrees", "Navigate to Lake Garda.",
                 "How much charge is left?"):
        assert bias.accepts_text(text), text
    for text in ("set the temperature to twelve degrees", "navigate to", "how much is left", "play some jazz",
                 "set the temperature to 20122.20122.201 degrees", "set the temperature to 21. 5 degrees"):
        assert not bias.accepts_text(text), text
    assert bias.accepts_text("set the temperature to 20,5 degrees")  # a decimal comma is a number too
    assert bias.is_prefix("set the temperature to") and bias.is_prefix("Navigate to")
    assert not bias.is_prefix("play some")


def test_a_question_or_exclamation_mark_closes_the_sentence(bias, recognizer) -> None:
    """Only where a sentence may end, and nothing but punctuation after it: a free-text slot cannot take in
    Whisper's repetition of the sentence."""
    assert bias.accepts_text("Navigate to Lake Garda?") and bias.accepts_text("How much charge is left?!")
    assert not bias.accepts_text("Navigate to some music? Navigate to some music?")
    assert not bias.is_prefix("How much? charge is left") and not bias.continues_word("Navigate to Garda?")
    assert bias.accepts_text("Navigate to St. Louis.")  # a full stop does not close: abbreviations, decimals
    tok = recognizer.tokenizer
    state = bias.initial()
    for t in tok.encode(" Navigate to Munich?"):
        state = bias.advance(state, t)
    assert bias.can_end(state) and bias.can_end(bias.advance(state, tok.encode(" ...")[0]))
    assert not bias.advance(state, tok.encode(" Can")[0])


def test_token_walk_allows_only_grammar_continuations(bias, recognizer) -> None:
    tok = recognizer.tokenizer
    state = bias.initial()
    for t in tok.encode(" Set temperature to 21 degrees"):
        state = bias.advance(state, t)
        assert state
    assert bias.can_end(state)
    assert not bias.advance(bias.initial(), tok.encode(" Play")[0])


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 3000), spread=st.floats(0.05, 20.0),
       masked=st.integers(0, 500))
def test_top_k_finds_the_k_largest_values_as_a_full_partition_does(seed, k, spread, masked) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(51865) * spread).astype(np.float32)
    x[rng.integers(0, x.size, masked)] = -np.inf  # suppressed tokens
    got = top_k(x, k)
    assert got.size == k == np.unique(got).size
    assert np.sort(x[got])[0] == np.sort(x)[-k]  # the k-th largest is the smallest taken, so the set is the top k


def test_bad_grammar_and_config_are_refused(recognizer) -> None:
    with pytest.raises(DataFormatError, match="grammar"):
        GrammarBias([seq("a", 3)], recognizer.tokenizer)
    with pytest.raises(DataFormatError):
        GrammarBias([], recognizer.tokenizer)
    with pytest.raises(ConfigError, match="mode"):
        GrammarBiasConfig(mode="force")
    with pytest.raises(ConfigError, match="known_max_drop"):
        GrammarBiasConfig(known_max_drop=-1.0)
    with pytest.raises(ConfigError, match="beam_size"):
        RecognizerConfig(beam_size=0)


@pytest.mark.shared_data
def test_beam_of_one_is_greedy_and_beam_five_transcribes(recognizer, speech_data: Path) -> None:
    audio = read_audio(speech_data / "asr" / "read_speech" / "jfk.flac")
    mel = recognizer.log_mel(audio)
    frames = min(mel.shape[1], audio.size // 160)
    cross, _ = recognizer.encode_window(mel, 0, frames)
    greedy, reason, _, _ = recognizer._decode(cross, 64)
    one = recognizer.beam_search(cross, 64, 1)
    assert one[0].tokens == greedy and reason == one[0].reason == "eot"
    five = WhisperRecognizer(RecognizerConfig(beam_size=5), files=recognizer.files)
    hyps = five.beam_search(cross, 64, 5)
    assert len(hyps) == 5 and all(a.score >= b.score for a, b in zip(hyps, hyps[1:], strict=False))
    text = five.transcribe(audio).text.lower()
    assert "ask not what your country can do for you" in text


def test_grammar_turns_a_command_into_a_grammar_sentence(recognizer, bias) -> None:
    tr = recognizer.transcribe(_speech("set the temperature to 21 degrees"), grammar=bias)
    assert bias.accepts_text(tr.text), tr
    assert "21" in tr.text
    assert tr.extra["grammar"] in ("free_in_grammar", "constrained")


@pytest.mark.shared_data
def test_speech_outside_the_grammar_stays_free_text(recognizer, bias, speech_data: Path) -> None:
    audio = read_audio(speech_data / "asr" / "read_speech" / "jfk.flac")
    free = recognizer.transcribe(audio)
    tr = recognizer.transcribe(audio, grammar=bias)
    assert tr.text == free.text
    assert tr.extra["grammar"] in ("free_no_fit", "free_better")


def test_a_free_transcript_in_the_grammar_outweighs_the_no_speech_gate(recognizer, bias) -> None:
    """With a no-speech gate that fires on every window (any no-speech probability, any log-probability), free
    text is dropped; with the grammar, a free transcript that is one of its sentences is kept (a short command
    in a mostly padded window), while free text outside the grammar is still dropped."""
    gate = WhisperRecognizer(RecognizerConfig(no_speech_threshold=-1.0, logprob_threshold=1.0), files=recognizer.files)
    command = _speech("how much charge is left")
    assert recognizer.transcribe(command, grammar=bias).extra["grammar"] == "free_in_grammar"  # the premise
    assert gate.transcribe(command).text == ""  # the gate alone drops it
    kept = gate.transcribe(command, grammar=bias)
    assert kept.extra["no_speech_overruled"] and bias.accepts_text(kept.text) and kept.stop_reason != "no_speech"
    other = gate.transcribe(_speech("the weather is lovely in the mountains today"), grammar=bias)
    assert other.text == "" and other.stop_reason == "no_speech" and "no_speech_overruled" not in other.extra


def test_the_automaton_memos_stay_bounded_and_forgetting_changes_no_answer(recognizer, monkeypatch) -> None:
    """A wildcard reaches state sets without bound, so each memo keeps at most two generations; a memo that
    forgets gives the same answers (they are recomputed)."""
    import random

    from edge_assistant.asr import grammar_bias as gb

    rng = random.Random(0)
    words = ["set", "the", "temperature", "to", "21", "degrees", "navigate", "lake", "garda", "how", "much",
             "charge", "is", "left", "heating", "19.5", "play", "jazz"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 7))) for _ in range(400)]
    texts += ["navigate to " + "".join(rng.choice("abcdefghij ") for _ in range(12)) for _ in range(400)]
    unbounded = GrammarBias(TEMPLATES, recognizer.tokenizer)
    want = [(unbounded.accepts_text(t), unbounded.is_prefix(t)) for t in texts]
    monkeypatch.setattr(gb, "MEMO_LIMIT", 50)
    small = GrammarBias(TEMPLATES, recognizer.tokenizer)
    got = [(small.accepts_text(t), small.is_prefix(t)) for t in texts]
    assert got == want
    assert len(unbounded._nfa._moves) > 2 * 50  # these texts do reach many state sets
    for memo in (small._nfa._moves, small._nfa._closure, small._tokens):
        assert len(memo) <= 2 * 50
    for token in range(200, 2200, 7):  # token walks too: the same states through the memo as without it
        assert small.advance(small.initial(), token) == unbounded.advance(unbounded.initial(), token)
    assert len(small._tokens) <= 2 * 50


def test_a_memo_keeps_what_is_used() -> None:
    from edge_assistant.asr.grammar_bias import _Memo

    memo = _Memo(3)
    for k in "abc":
        memo.put(k, k.upper())
    memo.put("d", "D")  # the first generation is full: a, b, c are now the old one
    assert memo.get("a") == "A"  # used again: carried into the new generation
    memo.put("e", "E")
    memo.put("f", "F")  # the new one (d, a, e) was full: it becomes the old one, b and c are forgotten
    assert memo.get("b") is None and memo.get("c") is None
    assert memo.get("a") == "A" and memo.get("d") == "D" and len(memo) <= 6


# ---- names(): a list of known values (a gazetteer) as one shared trie ---------------------------------------
_WORDS = st.text(alphabet="abcdeo -'", min_size=1, max_size=8).filter(lambda w: w.strip())


@settings(max_examples=60, deadline=None)
@given(values=st.lists(_WORDS, min_size=1, max_size=8), probes=st.lists(st.text(alphabet="abcdeo -',.", max_size=12),
                                                                         max_size=8))
def test_a_names_list_accepts_exactly_what_the_same_alternatives_accept(recognizer, values, probes) -> None:
    """``names(values)`` is the trie form of ``alt(*values)``: the same sentences, prefixes and unfinished words,
    for the values themselves, their prefixes and random text."""
    tok = recognizer.tokenizer
    cleaned = sorted({v.strip().lower() for v in values})
    as_trie = GrammarBias([seq("go to ", names(values), " now"), seq("find ", names(values))], tok)
    as_alt = GrammarBias([seq("go to ", alt(*cleaned), " now"), seq("find ", alt(*cleaned))], tok)
    texts = [f"go to {v} now" for v in cleaned] + [f"find {v}" for v in cleaned] + [f"find {p}" for p in probes]
    texts += [f"go to {v[: len(v) // 2]}" for v in cleaned] + [f"go to {p} now" for p in probes]
    for text in texts:
        assert as_trie.accepts_text(text) == as_alt.accepts_text(text), text
        assert as_trie.is_prefix(text) == as_alt.is_prefix(text), text
        assert as_trie.continues_word(text) == as_alt.continues_word(text), text


def test_a_names_list_is_one_trie_however_many_sentences_use_it(recognizer) -> None:
    values = ("munich", "berlin", "new york", "newcastle", "boston")
    places = names(values)
    one = GrammarBias([seq("navigate to ", places)], recognizer.tokenizer)
    ten = GrammarBias([seq(f"{verb} to ", places) for verb in
                       ("navigate", "drive", "go", "route", "head", "take me", "get me", "steer", "ride", "fly")],
                      recognizer.tokenizer)
    prefixes = {v[:i] for v in values for i in range(1, len(v) + 1)}
    assert len(one._nfa.trie_next) == len(ten._nfa.trie_next) == 1 + len(prefixes)  # the root and one per prefix
    assert ten.accepts_text("Take me to New York.") and ten.accepts_text("fly to newcastle")
    assert not ten.accepts_text("fly to new") and ten.is_prefix("fly to new") and ten.continues_word("fly to new")
    assert not ten.accepts_text("navigate to munich berlin")
    with pytest.raises(DataFormatError, match="names"):
        names(["  ", ""])


def test_a_misheard_place_is_narrowed_to_a_known_one_and_an_unknown_place_keeps_its_free_text(recognizer) -> None:
    """With ``known``, a transcript whose free-text place is none of the known places is searched once more with
    the place narrowed to them: eSpeak's en-us "Take me to Boston" is heard as "Marston"; narrowed, "Boston".
    A place that is not in the list ("the office") keeps its free text."""
    cities = names(["boston", "berlin", "munich", "hamburg", "marseille", "madrid", "austin"])
    templates = [seq(alt("take me to ", "navigate to "), ANY)]
    known = GrammarBias([seq(alt("take me to ", "navigate to "), cities)], recognizer.tokenizer,
                        GrammarBiasConfig(beam_size=8))
    plain = GrammarBias(templates, recognizer.tokenizer, GrammarBiasConfig(beam_size=8))
    narrowing = GrammarBias(templates, recognizer.tokenizer, GrammarBiasConfig(beam_size=8), known=known)
    boston = _speech("Take me to Boston", voice="en-us")
    assert "boston" not in recognizer.transcribe(boston, grammar=plain).text.lower()  # the premise
    tr = recognizer.transcribe(boston, grammar=narrowing)
    assert tr.extra["known"] == "replaced" and "boston" in tr.text.lower(), tr
    office = _speech("Take me to the office", voice="en-us")
    tr = recognizer.transcribe(office, grammar=narrowing)
    assert tr.text == recognizer.transcribe(office, grammar=plain).text and "office" in tr.text.lower()
    assert tr.extra["known"] in ("no_fit", "free_text_better"), tr.extra


@pytest.mark.shared_data
def test_noise_alone_reaches_no_intent_though_the_grammar_reads_sentences_into_it(recognizer, noise_data: Path
                                                                                  ) -> None:
    """Real background noise and the cabin generator, nothing else, through the device's grammar-aware
    recognition: the constrained search finds sentences of the car grammar in it ("It's too cold."), and the
    no-speech gate drops them, so no window becomes a command."""
    from edge_assistant.audio.noise import load_noise
    from edge_assistant.bench.intent import run_noise_only
    from edge_assistant.intents import car_matcher
    from edge_assistant.pipeline.grammar_link import recognition_grammar

    matcher = car_matcher()
    car = recognition_grammar(matcher, recognizer.tokenizer)
    sources = [("background", load_noise(noise_data / "background", seed=0)), ("car", load_noise("car", seed=0))]
    rows = run_noise_only(matcher, {"greedy": recognizer}, {"car grammar": car}, sources, windows=6)
    assert [r["intents"] for r in rows] == [0, 0]
    assert all(r["no_speech_gated"] == r["windows"] == 6 for r in rows)
    assert sum(r["gated_with_grammar_sentence"] for r in rows) > 0  # the premise: the search did read sentences


def test_bench_intent_cli_compares_free_text_with_the_grammar_and_counts_noise_alone(asr_cache, tmp_path: Path,
                                                                                      capsys) -> None:
    """``--grammar off`` (free text only) beside the constrained search, one noise condition, and the noise-only
    windows in the JSON."""
    import json

    from edge_assistant.cli import main

    audio = tmp_path / "cmds"
    assert main(["bench", "intent", "--make-audio", str(audio), "--per-intent", "1", "--seeds", "3",
                 "--intent", "vehicle.range", "--intent", "climate.fan"]) == 0
    out = tmp_path / "res.json"
    assert main(["bench", "intent", "--audio", str(audio), "--labels", str(audio / "labels.json"), "--beam", "1",
                 "--grammar", "off", "constrain", "--noise", "car", "--snr", "6", "--noise-only", "2",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["rows"]) == {f"{c} | beam 1 | {g}" for c in ("clean", "car 6 dB") for g in ("off", "constrain")}
    assert res["rows"]["clean | beam 1 | off"]["grammar_modes"] == {"off": res["commands"]}
    # the keys: the device's mode (the grammar) on the clean audio and per SNR
    assert res["headline"] == {"recognizer": "beam 1", "grammar": "constrain"}
    clean = res["rows"]["clean | beam 1 | constrain"]
    assert (res["accepted"], res["acceptance"]) == (clean["accepted"], clean["accepted"] / res["commands"])
    assert [(r["noise"], r["snr_db"]) for r in res["by_snr"]] == [("car", 6.0)]
    assert res["by_snr"][0]["accepted"] == res["rows"]["car 6 dB | beam 1 | constrain"]["accepted"]
    # sentences sampled from the grammar are matched as said: what is lost is lost in recognition
    assert res["reference_text"] == {"commands": res["commands"], "accepted": res["commands"], "acceptance": 1.0}
    assert [(r["noise"], r["grammar"], r["windows"]) for r in res["noise_only"]] == [("car", "off", 2),
                                                                                   ("car", "constrain", 2)]
    printed = capsys.readouterr().out
    assert "car alone | beam 1 | constrain" in printed and "the spoken text (no recognition)" in printed
    assert main(["bench", "intent", "--audio", str(audio), "--labels", str(audio / "labels.json"),
                 "--noise-only", "-1"]) == 1
    assert "--noise-only -1: expected a number of windows >= 0" in capsys.readouterr().err
