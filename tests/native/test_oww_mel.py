"""openWakeWord features from the C front end: chunk invariance and agreement with melspectrogram.onnx."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from edge_assistant.audio.frontend import OwwMelFrontend

from ._signals import speechlike

CHUNKINGS = {"1": [1], "7": [7], "160": [160], "1280": [1280], "mixed": [1, 7, 160, 1280, 333, 2, 4000]}


def _onnx_session():
    import onnxruntime as ort
    from openwakeword import utils

    path = pathlib.Path(utils.__file__).parent / "resources" / "models" / "melspectrogram.onnx"
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def onnx_mel():
    sess = _onnx_session()

    def run(x: np.ndarray) -> np.ndarray:
        out = sess.run(None, {"input": x[None].astype(np.float32)})[0]
        return np.squeeze(out, axis=(0, 1)) / 10.0 + 2.0

    return run


def _feed(fe: OwwMelFrontend, x: np.ndarray, sizes: list[int], seed: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed) if seed is not None else None
    out, pos, i = [], 0, 0
    while pos < x.size:
        n = int(rng.integers(1, 3000)) if rng is not None else sizes[i % len(sizes)]
        out.append(fe.process(x[pos : pos + n]))
        pos += n
        i += 1
    return np.concatenate(out) if out else np.zeros((0, 32), np.float32)


def _pcm(seconds: float, seed: int = 0, silence_s: float = 0.0) -> np.ndarray:
    x = (speechlike(int(seconds * 16000), seed) * 32767).astype(np.int16)
    return np.concatenate([x, np.zeros(int(silence_s * 16000), np.int16)])


@pytest.mark.parametrize("clamp_blocks", [True, False])
@pytest.mark.parametrize("chunking", list(CHUNKINGS) + ["random"])
def test_chunk_size_invariance(clamp_blocks: bool, chunking: str) -> None:
    x = _pcm(1.5, seed=3, silence_s=0.5)  # speech then digital silence: the clamp is active in block mode
    with OwwMelFrontend(clamp_blocks) as fe:
        whole = fe.process(x)
    with OwwMelFrontend(clamp_blocks) as fe:
        chunked = _feed(fe, x, CHUNKINGS.get(chunking, [1]), seed=7 if chunking == "random" else None)
    assert chunked.shape == whole.shape
    np.testing.assert_array_equal(chunked, whole)


def test_frame_grid_and_release_schedule() -> None:
    with OwwMelFrontend(clamp_blocks=False) as fe:
        assert fe.process(np.zeros(511, np.int16)).shape == (0, 32)
        assert fe.process(np.zeros(1, np.int16)).shape == (1, 32)  # frame 0 = samples [0, 512)
        assert fe.process(np.zeros(160, np.int16)).shape == (1, 32)
        assert fe.frames_released == 2
    with OwwMelFrontend() as fe:  # blocks: 5 frames at 1152 samples, then 8 per 1280
        assert fe.process(np.zeros(1151, np.int16)).shape[0] == 0
        assert fe.process(np.zeros(1, np.int16)).shape[0] == 5
        assert fe.process(np.zeros(1280 + 128, np.int16)).shape[0] == 8
        fe.reset()
        assert fe.frames_released == 0
        assert fe.process(np.zeros(1152, np.int16)).shape[0] == 5


def test_synthetic_agrees_with_onnx_whole_clip(onnx_mel) -> None:
    x = _pcm(2.0, seed=1)
    ref = onnx_mel(x)
    with OwwMelFrontend(clamp_blocks=False) as fe:
        ours = fe.process(x)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 0.02
    assert np.abs(ours - ref).max() < 1e-3  # in practice float32 round-off only


def _openwakeword_streaming_mel(x: np.ndarray) -> np.ndarray:
    """The real peer: openwakeword's AudioFeatures streaming path fed 1280-sample chunks.

    Uses its own raw-data buffer and ``_streaming_melspectrogram`` (what ``_streaming_features`` calls),
    skipping only the embedding model; returns the frames each call appended.
    """
    from openwakeword.utils import AudioFeatures

    af = AudioFeatures(ncpu=1)
    frames = []
    for pos in range(0, x.size - x.size % 1280, 1280):
        af._buffer_raw_data(x[pos : pos + 1280])
        af._streaming_melspectrogram(1280)
        frames.append(af.melspectrogram_buffer[-(5 if pos == 0 else 8) :].copy())
    return np.concatenate(frames).astype(np.float32)


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_streaming_agrees_with_openwakeword_audiofeatures() -> None:
    """Block clamp mode reproduces openwakeword's own streaming features, silence (clamp) included."""
    x = _pcm(2.0, seed=2, silence_s=1.0)
    x = x[: x.size - x.size % 1280]
    ref = _openwakeword_streaming_mel(x)
    with OwwMelFrontend() as fe:
        ours = _feed(fe, x, [7, 333, 1])
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 0.02


def _real_clips(root: pathlib.Path, n: int) -> list[pathlib.Path]:
    files = sorted(root.rglob("*.flac")) + sorted(root.rglob("*.wav"))
    rng = np.random.default_rng(0)
    return [files[i] for i in sorted(rng.choice(len(files), size=min(n, len(files)), replace=False))]


def _read16k(path: pathlib.Path) -> np.ndarray | None:
    import soundfile as sf

    from edge_assistant.audio.frontend import resample

    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # noqa: BLE001 - the alexa folder holds damaged FLACs on purpose
        return None
    x = x.mean(axis=1)
    if sr != 16000:
        x = resample(x, sr)
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore:Specified provider")
def test_real_speech_agrees_with_onnx(wakeword_data: pathlib.Path, speech_data: pathlib.Path, onnx_mel) -> None:
    """Real recordings (alexa, other keywords, read speech): max |diff| of transformed features <= 0.02."""
    clips = [wakeword_data / "multiple_keywords.wav"]
    clips += _real_clips(wakeword_data / "alexa", 12) + _real_clips(wakeword_data / "snowboy", 4)
    clips += _real_clips(speech_data / "asr" / "read_speech", 3)
    worst, checked = 0.0, 0
    for path in clips:
        x = _read16k(path)
        if x is None or x.size < 1280:
            continue
        # The peer as openwakeword streams it (1280-sample calls, per-call clamp) vs our block mode.
        x = x[: x.size - x.size % 1280]
        ref = _openwakeword_streaming_mel(x) if path.name == "multiple_keywords.wav" else None
        with OwwMelFrontend() as fe:
            ours = fe.process(x)
        if ref is not None:
            worst = max(worst, float(np.abs(ours - ref).max()))
        # Whole-clip ONNX: identical wherever the clamp (which depends on the call) is not active.
        whole = onnx_mel(x)
        with OwwMelFrontend(clamp_blocks=False) as fe:
            free = fe.process(x)
        active = whole > whole.max() - 8.0 + 1e-3
        worst = max(worst, float(np.abs(free - whole)[active].max()))
        checked += 1
    assert checked >= 15, f"only {checked} real clips could be read"
    assert worst <= 0.02, f"max abs difference {worst:.4f} > 0.02"


def test_bad_input() -> None:
    with OwwMelFrontend() as fe:
        with pytest.raises(ValueError, match="int16"):
            fe.process(np.zeros(100, np.float32))
        with pytest.raises(ValueError, match="1-D"):
            fe.process(np.zeros((3, 100), np.int16))
        assert fe.process(np.zeros(0, np.int16)).shape == (0, 32)
    with pytest.raises(ValueError, match="closed"):
        fe.process(np.zeros(10, np.int16))
