"""Regenerate the golden vectors the C tests compare against (rerunnable, deterministic).

    .venv/bin/python native/tests/gen_golden.py

References are the peers themselves: openwakeword's melspectrogram.onnx through onnxruntime, faster-whisper's
FeatureExtractor, and numpy's FFT. Inputs are synthesized from a fixed seed (speech-like harmonic bursts plus
noise), so nothing from outside the repository is needed. Files are raw little-endian arrays.
"""

from __future__ import annotations

import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent / "golden"
SEED = 20240611


def speechlike(n: int, rng: np.random.Generator) -> np.ndarray:
    """Harmonic 'voiced' bursts with a gliding pitch, plus broadband noise; float in [-1, 1)."""
    t = np.arange(n) / 16000.0
    f0 = 140.0 + 40.0 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000.0
    voiced = sum(np.sin(k * phase) / k for k in range(1, 25))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
    x = 0.25 * env * voiced + 0.02 * rng.standard_normal(n)
    return np.clip(x, -1.0, 0.999).astype(np.float32)


def main() -> None:
    import onnxruntime as ort
    from faster_whisper.feature_extractor import FeatureExtractor
    from openwakeword import utils  # noqa: F401  (locates the package resources)

    rng = np.random.default_rng(SEED)
    OUT.mkdir(exist_ok=True)

    # FFT: complex input of several mixed-radix lengths against numpy (float64 reference).
    for n in (256, 200, 512, 400, 360, 77):
        z = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
        np.asarray(z, np.complex64).view(np.float32).tofile(OUT / f"fft{n}_in.f32")
        np.fft.fft(z.astype(np.complex128)).astype(np.complex64).view(np.float32).tofile(OUT / f"fft{n}_out.f32")

    # openWakeWord features: int16 stream, whole-clip ONNX output (no silence, so the clamp is inactive).
    x = (speechlike(6000, rng) * 32767).astype(np.int16)
    x.tofile(OUT / "oww_in.i16")
    model = pathlib.Path(utils.__file__).parent / "resources" / "models" / "melspectrogram.onnx"
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    mel = sess.run(None, {"input": x[None].astype(np.float32)})[0].squeeze() / 10.0 + 2.0
    mel.astype(np.float32).tofile(OUT / "oww_out.f32")

    # Whisper log-mel of a float signal with the default 160-sample padding.
    w = speechlike(5000, rng)
    w.tofile(OUT / "whisper_in.f32")
    FeatureExtractor()(w, padding=160).astype(np.float32).tofile(OUT / "whisper_out.f32")
    print(f"golden vectors written to {OUT}")


if __name__ == "__main__":
    main()
