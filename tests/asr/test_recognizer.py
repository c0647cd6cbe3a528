"""The recogniser: real speech (WER bound, peer comparison) and inputs synthesised here (edge cases)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.asr.recognizer import RecognizerConfig, compression_ratio, repeated_tail
from edge_assistant.asr.wer import normalize, wer
from edge_assistant.audio.io import read_audio
from edge_assistant.core.errors import ConfigError, DataFormatError

#: Stated bound for the int8 recogniser on ../shared/data/speech/asr (60 clips, 612 words). Measured
#: 11-14 % depending on the encoder margin; faster-whisper on the same files with its transcribe defaults
#: (2026-12-04): 12.4 % at beam 5 (its default), 14.7-15.2 % at beam 1 (temperature fallback samples).
#: Ours, greedy and deterministic: 12.58 % (2026-12-04); the bound leaves ~9 words for other CPUs' kernels
#: and stays below the peer's beam-1 figure.
WER_BOUND = 0.14


def _clips(speech_data: Path, folder: str) -> list[tuple[Path, str]]:
    root = speech_data / "asr" / folder
    with open(root / "transcripts.tsv", encoding="utf-8", newline="") as f:
        return [(root / row["file"], row["text"]) for row in csv.DictReader(f, delimiter="\t")]


@pytest.fixture(scope="module")
def real_clips(speech_data):
    clips = _clips(speech_data, "common_voice") + _clips(speech_data, "read_speech")
    return [(p, text, read_audio(p)) for p, text in clips]


# --- real speech --------------------------------------------------------------------------------------
@pytest.mark.shared_data
@pytest.mark.slow
def test_wer_on_real_clips_within_bound(recognizer, real_clips):
    hyps = [recognizer.transcribe(audio).text for _, _, audio in real_clips]
    rate, errors, words = wer((text, hyp) for (_, text, _), hyp in zip(real_clips, hyps, strict=True))
    assert words > 500
    assert rate <= WER_BOUND, f"WER {rate:.3f} ({errors}/{words}) above {WER_BOUND}"


@pytest.mark.shared_data
def test_jfk_exact(recognizer, speech_data):
    """44.1 kHz stereo FLAC through read_audio (C resampler) -> the sentence, word for word."""
    audio = read_audio(speech_data / "asr" / "read_speech" / "jfk.flac")
    t = recognizer.transcribe(audio)
    assert normalize(t.text) == normalize(
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.")
    assert t.stop_reason == "eot" and not t.suspect
    assert t.encoder_frames < 3000  # variable context: not a padded 30 s window
    assert t.features_ms > 0 and t.encoder_ms > 0 and t.decoder_ms > 0


@pytest.mark.shared_data
def test_same_text_at_other_sample_rates(recognizer, speech_data, tmp_path):
    """A 16 kHz clip written at 48 kHz and 8 kHz-upsampled-to-44.1 kHz, read back through read_audio."""
    import soundfile as sf
    from scipy.signal import resample_poly

    path, text, = _clips(speech_data, "common_voice")[4]
    audio = read_audio(path)
    base = recognizer.transcribe(audio).text
    f48 = tmp_path / "clip48k.wav"
    sf.write(f48, resample_poly(audio, 3, 1).astype(np.float32), 48000, subtype="PCM_16")
    assert normalize(recognizer.transcribe(read_audio(f48)).text) == normalize(base)
    st = tmp_path / "clip22k_stereo.flac"
    x = resample_poly(audio, 441, 320).astype(np.float32)
    sf.write(st, np.stack([x, x], axis=1), 22050, subtype="PCM_16")
    assert wer([(base, recognizer.transcribe(read_audio(st)).text)])[0] <= 0.2


@pytest.mark.shared_data
def test_clipped_speech_still_transcribed(recognizer, real_clips):
    _, text, audio = real_clips[0]
    clipped = np.clip(audio * 20.0, -1.0, 1.0)  # hard clipping, ~26 dB over full scale
    assert np.mean(np.abs(clipped) >= 1.0) > 0.05
    t = recognizer.transcribe(clipped)
    assert wer([(text, t.text)])[0] <= 0.5
    assert len(t.tokens) < 40


@pytest.mark.shared_data
@pytest.mark.slow
def test_long_input_is_windowed(recognizer, real_clips):
    """62 s of real sentences in a row: three 30 s windows, bounded output, the sentences recognised."""
    parts, texts, total = [], [], 0
    for _, text, audio in real_clips:
        parts.append(audio)
        texts.append(text)
        total += audio.size
        if total > 62 * 16000:
            break
    t = recognizer.transcribe(np.concatenate(parts)[: 62 * 16000])
    assert t.windows == 3
    assert len(t.tokens) <= 3 * 224
    # The last sentence is cut at 62 s and the window edges at 30/60 s may cut a word: a loose bound.
    assert wer([(" ".join(texts[:-1]), t.text)])[0] < 0.4


@pytest.mark.shared_data
@pytest.mark.slow
def test_wer_within_one_point_of_faster_whisper(recognizer, real_clips):
    """The peer as its users get it (transcribe defaults: beam 5, temperature fallback; same model files,
    CPU, int8) on all 60 clips: the read-speech folder alone has 151 words, where one error is 0.7 points."""
    from edge_assistant.bench.asr import FasterWhisperPeer

    peer = FasterWhisperPeer(threads=1)
    assert peer.transcribe_kwargs == {"beam_size": 5}
    ours = wer((text, recognizer.transcribe(a).text) for _, text, a in real_clips)[0]
    theirs = wer((text, peer.transcribe(a)) for _, text, a in real_clips)[0]
    assert ours <= theirs + 0.01, f"ours {ours:.3f} vs faster-whisper {theirs:.3f}"


# --- synthesised inputs (always run) -------------------------------------------------------------------
def test_silence_gives_empty_text_quickly(recognizer):
    t0 = time.perf_counter()
    t = recognizer.transcribe(np.zeros(3 * 16000, np.float32))
    assert t.text == "" or len(t.text.split()) <= 2
    assert len(t.tokens) <= 16
    assert time.perf_counter() - t0 < 20


def test_noise_gives_bounded_output(recognizer):
    rng = np.random.default_rng(3)
    t = recognizer.transcribe((0.1 * rng.standard_normal(5 * 16000)).astype(np.float32))
    assert len(t.tokens) <= recognizer.config.max_tokens_per_s * 5 + 1


def test_tenth_of_a_second(recognizer):
    rng = np.random.default_rng(4)
    t = recognizer.transcribe((0.05 * rng.standard_normal(1600)).astype(np.float32))
    assert len(t.tokens) <= recognizer.config.min_token_budget
    assert t.audio_s == pytest.approx(0.1)


def test_shorter_than_one_frame_is_empty(recognizer):
    t = recognizer.transcribe(np.zeros(100, np.float32))
    assert t.text == "" and t.stop_reason == "empty"
    assert recognizer.transcribe(np.zeros(0, np.float32)).text == ""


def test_sixty_seconds_of_tone_and_noise(recognizer):
    rng = np.random.default_rng(5)
    n = 60 * 16000
    x = 0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000) + 0.02 * rng.standard_normal(n)
    t0 = time.perf_counter()
    t = recognizer.transcribe(x.astype(np.float32))
    assert t.windows == 2
    assert len(t.tokens) <= 2 * 224
    assert time.perf_counter() - t0 < 60


def test_clipped_square_wave(recognizer):
    x = np.clip(3.0 * np.sin(2 * np.pi * 200 * np.arange(32000) / 16000), -1, 1).astype(np.float32)
    t = recognizer.transcribe(x)
    assert len(t.tokens) <= recognizer.config.max_tokens_per_s * 2 + recognizer.config.min_token_budget


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_a_clear_error(recognizer, bad):
    x = np.zeros(16000, np.float32)
    x[1234] = bad
    with pytest.raises(DataFormatError, match=r"audio sample 1234 \(t=0\.077 s\).*NaN/inf"):
        recognizer.transcribe(x)


def test_bad_shapes_rates_and_types(recognizer):
    with pytest.raises(ConfigError, match="sample_rate_hz: 44100; expected 16000"):
        recognizer.transcribe(np.zeros(16000, np.float32), sample_rate_hz=44100)
    with pytest.raises(DataFormatError, match=r"shape \(16000, 2\); expected a 1-D mono"):
        recognizer.transcribe(np.zeros((16000, 2), np.float32))
    with pytest.raises(DataFormatError, match="dtype int32"):
        recognizer.transcribe(np.zeros(16000, np.int32))
    # int16 PCM and (N, 1) column vectors are accepted.
    assert recognizer.transcribe(np.zeros((16000, 1), np.int16)).audio_s == pytest.approx(1.0)


def test_config_is_checked():
    with pytest.raises(ConfigError, match="threads"):
        RecognizerConfig(threads=0)
    with pytest.raises(ConfigError, match="audio_ctx_margin_s"):
        RecognizerConfig(audio_ctx_margin_s=-1)
    with pytest.raises(ConfigError, match="max_tokens"):
        RecognizerConfig(max_tokens=1000)


def test_repetition_guard():
    assert repeated_tail([1, 2, 3, 4, 5], 16, 3) == 0
    assert repeated_tail([9, 5, 6, 5, 6, 5, 6], 16, 3) == 4  # (5 6) x3 -> keep one copy
    assert repeated_tail([7, 7, 7], 16, 3) == 0  # "no no no" is speech
    assert repeated_tail([7] * 6, 16, 3) == 5
    assert repeated_tail([1] + [4, 5, 6, 7] * 3, 16, 3) == 8
    assert repeated_tail([1] + [4, 5, 6, 7] * 2, 16, 3) == 0
    sentence = list(range(100, 112))
    assert repeated_tail([1, 2] + sentence + sentence, 48, 3) == 12  # a whole sentence said twice
    assert repeated_tail([1, 2] + sentence + sentence, 8, 3) == 0  # longer than max_period
    assert compression_ratio("") == 0.0
    assert compression_ratio("the cat " * 40) > 2.4 > compression_ratio("A group of doctors examined the charts.")


def test_prompt_and_suppression(recognizer):
    tk = recognizer.tokenizer.tokens
    assert not tk.multilingual and tk.prompt == (50362,)  # tiny.en: <|sot|><|notimestamps|>
    assert tk.eot == 50256 and tk.sot == 50257
    mask = recognizer.tokenizer.suppress_mask(begin=False)
    assert mask[tk.eot] == 0 and np.isinf(mask[50363]) and np.isinf(mask[tk.sot]) and np.isinf(mask[1])
    first = recognizer.tokenizer.suppress_mask(begin=True)
    assert np.isinf(first[tk.eot]) and np.isinf(first[220])


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_other_rates_through_read_audio(recognizer, tmp_path, rate):
    """Files the test writes at other rates (a voiced buzz): resampled by read_audio, bounded output."""
    import soundfile as sf

    t = np.arange(int(1.5 * rate)) / rate
    x = 0.3 * np.sign(np.sin(2 * np.pi * 150 * t)) * np.exp(-((t - 0.75) / 0.4) ** 2)
    path = tmp_path / f"buzz_{rate}.wav"
    sf.write(path, x.astype(np.float32), rate, subtype="PCM_16")
    audio = read_audio(path)
    assert audio.size == pytest.approx(1.5 * 16000, abs=2)
    result = recognizer.transcribe(audio)
    assert result.audio_s == pytest.approx(1.5, abs=1e-3)
    assert len(result.tokens) <= recognizer.config.min_token_budget


@pytest.mark.shared_data
def test_beam_search_steps_its_beams_in_one_call(recognizer, speech_data):
    """The batched beam search (one decoder call per step for all beams) reads a real sentence as stepping each
    beam alone does."""
    from dataclasses import replace

    from edge_assistant.asr.recognizer import WhisperRecognizer

    beam = WhisperRecognizer(replace(recognizer.config, beam_size=4))
    assert beam.batched  # the model cache's decoder takes a batch (export revision 4)
    audio = read_audio(speech_data / "asr" / "read_speech" / "jfk.flac")
    together = beam.transcribe(audio)
    beam.batched = False
    alone = beam.transcribe(audio)
    assert together.text == alone.text
    assert normalize(together.text).startswith("and so my fellow americans")


def test_no_memory_pattern_is_kept_per_input_shape(recognizer):
    """Every command gives the encoder and decoder new shapes; a pattern kept per shape grows the process for
    as long as it runs (measured in the soak, benchmarks/RESULTS.md), so the sessions plan none."""
    for session in (recognizer._encoder, recognizer._cross, recognizer._decoder):
        assert session.get_session_options().enable_mem_pattern is False
