"""Second-language pronunciations of a wake phrase (``modelbuild/wakeword/accents.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.modelbuild.wakeword.accents import L2Pronunciations, espeak_input
from edge_assistant.modelbuild.wakeword.confusables import derive, distance, phonemes

PHRASES = ("jarvis", "smart mirror", "view glass", "hey car", "snowboy")


@pytest.mark.parametrize("phrase", PHRASES)
def test_every_variant_differs_from_the_phrase_and_stays_closer_to_it_than_to_any_negative(phrase: str) -> None:
    conf = derive(phrase)
    l2 = L2Pronunciations(conf)
    own = phonemes(phrase)
    negatives = [phonemes(t) for t in conf.near]
    rng = np.random.default_rng(5)
    drawn = [v for v in (l2.draw(rng) for _ in range(60)) if v is not None]
    assert drawn, "no variant for a phrase of ordinary English sounds"
    for v in drawn:
        flat = tuple(p for word in v for p in word)
        assert flat != own and len(v) == len(phrase.split())
        d = distance(flat, own)
        assert 0 < d <= 3.0  # one or two substitutions, each at most a sound changed and one added (/ɝ/ → /ɛr/)
        assert all(d < distance(flat, n) for n in negatives), (v, min(negatives, key=lambda n: distance(flat, n)))


def test_variants_are_seeded() -> None:
    l2 = L2Pronunciations(derive("jarvis"))
    a = [l2.draw(np.random.default_rng([7, i])) for i in range(20)]
    assert a == [l2.draw(np.random.default_rng([7, i])) for i in range(20)]
    assert len(set(a)) > 3


def test_a_variant_is_what_was_substituted() -> None:
    """Devoicing of the first sound of "jarvis" (/dʒ/ → /tʃ/) and an added final vowel, as espeak-ng input."""
    assert espeak_input((("CH", "AA", "R", "V", "AH", "S", "AH"),)) == "[[tS'A:rv@s@]]"
    # an added vowel before /s/ + consonant takes no stress; the word's own vowel keeps it
    assert espeak_input((("EH", "S", "M", "AA", "R", "T"), ("M", "IY", "R", "ER"))) == "[[Esm'A:rt m'i:r3:]]"


def test_espeak_speaks_a_variant() -> None:
    from edge_assistant.audio.speech_synth import synthesize

    l2 = L2Pronunciations(derive("jarvis"))
    variant = l2.draw(np.random.default_rng(0))
    x = synthesize(espeak_input(variant), voice="en-us")
    assert 0.4 < len(x) / 16000 < 2.0 and float(np.max(np.abs(x))) > 0.05


def test_the_plan_gives_variants_to_wake_utterances_in_espeak_voices_only() -> None:
    """With ``l2_share`` 0 the plan is unchanged; with a share, only wake utterances in espeak-ng's voices carry a
    variant, and every other draw of the plan is the same."""
    from dataclasses import replace

    from edge_assistant.modelbuild.wakeword.synthetic import plan

    conf = derive("jarvis")
    base = plan("jarvis", 3, 1500, 0, 0x7EA1, conf, flite_share=0.5)
    assert base == plan("jarvis", 3, 1500, 0, 0x7EA1, conf, flite_share=0.5, l2_share=0.0)
    l2 = plan("jarvis", 3, 1500, 0, 0x7EA1, conf, flite_share=0.5, l2_share=0.5)
    assert [replace(u, spoken_phrase="") for u in l2] == base
    carriers = [u for u in l2 if u.spoken_phrase]
    assert carriers and all(u.has_wake and not u.voice.startswith("flite:") for u in carriers)
    eligible = [u for u in l2 if u.has_wake and not u.voice.startswith("flite:")]
    assert 0.35 < len(carriers) / len(eligible) < 0.65  # about 330 eligible utterances: ~4 standard deviations
    assert all(u.spoken_phrase.startswith("[[") for u in carriers)


def test_the_phrase_segment_is_spoken_from_the_variant() -> None:
    from edge_assistant.modelbuild.wakeword.synthetic import Utterance
    from edge_assistant.modelbuild.wakeword.train import speak_in_parts

    plain = Utterance(0, "jarvis, call home", True, "en-us", 160, 50)
    varied = Utterance(0, "jarvis, call home", True, "en-us", 160, 50, "[[tS'A:rvIs]]")
    xa, ea = speak_in_parts(plain, "jarvis", np.random.default_rng(1))
    xb, eb = speak_in_parts(varied, "jarvis", np.random.default_rng(1))
    assert 0 < ea < len(xa) and 0 < eb < len(xb)
    assert not np.array_equal(xa[:eb], xb[:eb])  # the phrase differs; the command after it is the same
    np.testing.assert_array_equal(xa[len(xa) - (len(xb) - eb) + 4000 :], xb[eb + 4000 :])


def test_l2_share_on_the_command_line_and_in_the_config() -> None:
    import argparse

    from edge_assistant.cli.models_train_wakeword import config_from_args, register
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.modelbuild.wakeword.train import TrainConfig

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    assert config_from_args(parser.parse_args(["train-wakeword", "jarvis", "--out", "x"])).l2_share == 0.0
    args = parser.parse_args(["train-wakeword", "jarvis", "--out", "x", "--l2-share", "0.5"])
    assert config_from_args(args).l2_share == 0.5
    with pytest.raises(ConfigError, match="train.l2_share"):
        TrainConfig("jarvis", l2_share=-0.1)
