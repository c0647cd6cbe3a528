"""The exported ONNX graphs against a plain numpy Whisper (tests/asr/whisper_numpy.py) on the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.asr.model_cache import whisper_dir

from . import whisper_numpy as ref

SOT, NO_TS = 50257, 50362


def _session(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def mel() -> np.ndarray:
    """Log-mel of 2 s of a synthetic voiced sound (harmonics with a moving pitch and formant-like envelope)."""
    from edge_assistant.audio.frontend import WhisperLogMel

    rng = np.random.default_rng(7)
    t = np.arange(32000) / 16000.0
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000.0
    x = sum(np.sin(k * phase) / k * np.exp(-((k * 130 - 700) / 900) ** 2) for k in range(1, 30))
    x = 0.3 * x / np.abs(x).max() + 0.003 * rng.standard_normal(t.size)
    m = WhisperLogMel()(x.astype(np.float32))
    return m[:, : m.shape[1] // 2 * 2]


@pytest.fixture(scope="module")
def sessions(asr_cache):
    d = whisper_dir(asr_cache)
    return {name: _session(d / f"{name}.onnx") for name in ("encoder", "cross_kv", "decoder")} | {
        f"{name}.int8": _session(d / f"{name}.int8.onnx") for name in ("encoder", "cross_kv", "decoder")}


def _run_decoder(sess, cross_sess, enc, token_batches):
    """Feed token batches through the KV-cache decoder; return the last-token logits after each batch."""
    cross_names = [o.name for o in cross_sess.get_outputs()]
    cross = dict(zip(cross_names, cross_sess.run(None, {"encoder_out": enc}), strict=True))
    past_names = [i.name for i in sess.get_inputs() if i.name.startswith("past_")]
    past = [np.zeros((1, 6, 0, 64), np.float32)] * len(past_names)
    logits = []
    for batch in token_batches:
        feed = dict(cross) | dict(zip(past_names, past, strict=True))
        feed["tokens"] = np.asarray([batch], np.int64)
        out = sess.run(None, feed)
        logits.append(out[0][0])
        past = out[1:]
        assert past[0].shape[2] == sum(len(b) for b in token_batches[: len(logits)])
    return logits


def test_encoder_matches_numpy(sessions, ct2_model, mel):
    out = sessions["encoder"].run(None, {"mel": mel[None]})[0][0]
    expected = ref.encode(ct2_model, mel)
    assert out.shape == (mel.shape[1] // 2, 384)
    assert np.abs(out - expected).max() < 2e-3


def test_encoder_takes_variable_length(sessions, ct2_model, mel):
    short = mel[:, :60]
    out = sessions["encoder"].run(None, {"mel": short[None]})[0][0]
    assert out.shape == (30, 384)
    assert np.abs(out - ref.encode(ct2_model, short)).max() < 2e-3


def test_decoder_with_kv_cache_matches_numpy(sessions, ct2_model, mel):
    enc = sessions["encoder"].run(None, {"mel": mel[None]})[0]
    tokens = [SOT, NO_TS, 383, 318, 257, 1332, 13]
    step_logits = _run_decoder(sessions["decoder"], sessions["cross_kv"], enc, [[t] for t in tokens])
    expected = ref.decode_logits(ct2_model, tokens, enc[0].astype(np.float64))
    for i, got in enumerate(step_logits):
        scale = np.abs(expected[i]).max()
        assert np.abs(got - expected[i]).max() < 1e-4 * scale + 1e-3, f"step {i}"
    # A multi-token batch (the prompt, causal mask inside the step) equals feeding the same tokens one by one.
    batched = _run_decoder(sessions["decoder"], sessions["cross_kv"], enc, [tokens[:3], tokens[3:5], tokens[5:]])
    for got, i in zip(batched, (2, 4, 6), strict=True):
        assert np.abs(got - step_logits[i]).max() < 1e-3


def test_int8_graphs_stay_close_to_float(sessions, mel):
    enc_f = sessions["encoder"].run(None, {"mel": mel[None]})[0]
    enc_q = sessions["encoder.int8"].run(None, {"mel": mel[None]})[0]
    cos = np.sum(enc_f * enc_q) / np.linalg.norm(enc_f) / np.linalg.norm(enc_q)
    assert cos > 0.99
    tokens = [[SOT, NO_TS], [383], [318]]
    lf = _run_decoder(sessions["decoder"], sessions["cross_kv"], enc_f, tokens)
    lq = _run_decoder(sessions["decoder.int8"], sessions["cross_kv.int8"], enc_f, tokens)
    for a, b in zip(lf, lq, strict=True):
        assert np.corrcoef(a, b)[0, 1] > 0.99
        assert set(np.argsort(a)[-5:]) & set(np.argsort(b)[-5:])  # the top candidates overlap


def test_int8_files_are_smaller_and_quantised(asr_cache):
    import onnx

    d = whisper_dir(asr_cache)
    for name in ("encoder", "decoder"):
        assert (d / f"{name}.int8.onnx").stat().st_size < 0.5 * (d / f"{name}.onnx").stat().st_size
    model = onnx.load(str(d / "encoder.int8.onnx"), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    assert "Conv" in ops  # the conv front end stays float (see quantize.py)
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"}


@pytest.mark.shared_data
def test_against_ctranslate2_on_real_speech(sessions, speech_data):
    """faster-whisper's engine (CTranslate2, float32, same model.bin) as the oracle on a 30 s window:
    the encoder output agrees, and greedy decoding gives the same tokens."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from edge_assistant.asr.recognizer import RecognizerConfig, WhisperRecognizer
    from edge_assistant.audio.frontend import WhisperLogMel
    from edge_assistant.audio.io import read_audio
    from edge_assistant.core.paths import whisper_package_dir

    audio = read_audio(speech_data / "asr" / "read_speech" / "jfk.flac")
    mel = WhisperLogMel()(audio)[:, : audio.size // 160]
    window = np.zeros((80, 3000), np.float32)
    window[:, : mel.shape[1]] = mel
    ct2 = ctranslate2.models.Whisper(str(whisper_package_dir()), device="cpu", compute_type="float32", intra_threads=1)
    features = ctranslate2.StorageView.from_array(window[None])
    expected = np.array(ct2.encode(features, to_cpu=True))
    ours = sessions["encoder"].run(None, {"mel": window[None]})[0]
    assert np.abs(ours - expected).max() < 1e-3
    ct2_tokens = ct2.generate(features, [[SOT, NO_TS]], beam_size=1, suppress_blank=True, max_length=100)[0].sequences_ids[0]
    ours_float = WhisperRecognizer(RecognizerConfig(int8=False, full_window=True)).transcribe(audio)
    assert list(ours_float.tokens) == ct2_tokens


@pytest.mark.parametrize("graph", ["decoder", "decoder.int8"])
def test_decoder_steps_a_batch_of_hypotheses(sessions, mel, graph):
    """Three hypotheses of the same length in one call (cross K/V shared, batch 1, by broadcasting) give each
    the logits and cache of its own call: equal for float; for int8 the activations are quantised over the
    whole batch, so float rounding differs but each row's ranking stays."""
    sess, cross_sess = sessions[graph], sessions["cross_kv" + graph[len("decoder"):]]
    enc = sessions["encoder"].run(None, {"mel": mel[None]})[0]
    cross = dict(zip([o.name for o in cross_sess.get_outputs()], cross_sess.run(None, {"encoder_out": enc}),
                     strict=True))
    past_names = [i.name for i in sess.get_inputs() if i.name.startswith("past_")]
    histories = [[SOT, NO_TS, 383, 318], [SOT, NO_TS, 464, 1332], [SOT, NO_TS, 40, 716]]

    def run(tokens, past):
        return sess.run(None, dict(cross) | dict(zip(past_names, past, strict=True)) | {"tokens": tokens})

    empty = [np.zeros((1, 6, 0, 64), np.float32)] * len(past_names)
    pasts = [run(np.asarray([h[:-1]], np.int64), empty)[1:] for h in histories]
    alone = [run(np.asarray([[h[-1]]], np.int64), p) for h, p in zip(histories, pasts, strict=True)]
    together = run(np.asarray([[h[-1]] for h in histories], np.int64),
                   [np.concatenate([p[j] for p in pasts]) for j in range(len(past_names))])
    assert together[0].shape == (3, alone[0][0].shape[1])
    for i, out in enumerate(alone):
        a, b = out[0][0], together[0][i]
        if graph == "decoder":
            assert np.abs(a - b).max() < 1e-3
            assert np.abs(out[1][0] - together[1][i]).max() < 1e-4
        else:
            assert np.corrcoef(a, b)[0, 1] > 0.999
            assert np.argmax(a) == np.argmax(b)
