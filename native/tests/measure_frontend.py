"""Measure the C front end's figures against its peers (rerunnable; prints JSON; not a test).

    .venv/bin/python native/tests/measure_frontend.py [--shared ../shared/data] [--json out.json]

* per-80 ms-chunk cost of ``OwwMelFrontend.process`` vs melspectrogram.onnx (onnxruntime, 1 thread, the
  1760-sample window openwakeword runs per 1280-sample chunk), CPU and wall time, best of 5 runs;
* Whisper log-mel of 30 s: C vs faster-whisper's FeatureExtractor, time and max |diff|;
* resampler: worst alias / image level over a dense sine sweep and pass-band deviation, per input rate;
* openWakeWord features on real recordings: max |diff| vs openwakeword's own streaming features;
* noise suppressor: SNR (speech distortion counted as noise) before/after on real read speech mixed with
  the package's car-cabin noise at 5 dB and 0 dB.
The official front-end speed figure is `edge-assistant bench latency`; this script is the native
helper's cross-check.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _best(fn, runs: int = 5) -> tuple[float, float]:
    """(best wall s, best cpu s) of fn() over runs."""
    bw = bc = float("inf")
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        bw, bc = min(bw, time.perf_counter() - w), min(bc, time.process_time() - c)
    return bw, bc


def timing() -> dict:
    import onnxruntime as ort
    from openwakeword import utils

    from edge_assistant.audio.frontend import OwwMelFrontend, WhisperLogMel

    rng = np.random.default_rng(0)
    stream = (rng.standard_normal(1280 * 400) * 2000).astype(np.int16)
    chunks = [stream[i : i + 1280] for i in range(0, stream.size, 1280)]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    path = pathlib.Path(utils.__file__).parent / "resources" / "models" / "melspectrogram.onnx"
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    fe = OwwMelFrontend()

    def run_c() -> None:
        fe.reset()
        for c in chunks:
            fe.process(c)

    def run_onnx() -> None:
        hist = np.zeros(0, np.float32)
        for c in chunks:
            hist = np.concatenate((hist, c.astype(np.float32)))[-1760:]
            sess.run(None, {"input": hist[None]})

    cw, cc = _best(run_c)
    ow, oc = _best(run_onnx)
    n = len(chunks)
    from faster_whisper.feature_extractor import FeatureExtractor

    x = (rng.standard_normal(16000 * 30) * 0.1).astype(np.float32)
    wm, fx = WhisperLogMel(), FeatureExtractor()
    ww, wc = _best(lambda: wm(x), 3)
    fw, fc = _best(lambda: fx(x, padding=160), 3)
    return {
        "oww_chunk_us": {"c_wall": cw / n * 1e6, "c_cpu": cc / n * 1e6, "onnx_wall": ow / n * 1e6, "onnx_cpu": oc / n * 1e6,
                         "speedup_wall": ow / cw, "speedup_cpu": oc / cc},
        "whisper_30s_ms": {"c_wall": ww * 1e3, "c_cpu": wc * 1e3, "faster_whisper_wall": fw * 1e3,
                           "faster_whisper_cpu": fc * 1e3, "speedup_cpu": fc / wc,
                           "max_abs_diff": float(np.abs(wm(x) - fx(x, padding=160)).max())},
    }


def _amp(y: np.ndarray, f: float, sr: float, *others: float) -> float:
    t = np.arange(y.size) / sr
    cols = []
    for g in (f, *others):
        cols += [np.sin(2 * np.pi * g * t), np.cos(2 * np.pi * g * t)]
    coef, *_ = np.linalg.lstsq(np.stack(cols, axis=1), y.astype(np.float64), rcond=None)
    return float(np.hypot(coef[0], coef[1]))


def resampler() -> dict:
    from edge_assistant.audio.frontend import Resampler, resample

    out = {}
    for fs in (8000, 22050, 44100, 48000):
        t = np.arange(fs) / fs
        worst = -np.inf
        if fs > 16000:
            for f in np.linspace(8000.0, 0.499 * fs, 120):
                y = resample(np.sin(2 * np.pi * f * t), fs)
                worst = max(worst, 20 * np.log10(np.abs(y[300:-300]).max() + 1e-30))
        else:
            for f in np.linspace(50.0, 3500.0, 60):
                y = resample(np.sin(2 * np.pi * f * t), fs)[300:-300]
                worst = max(worst, 20 * np.log10(_amp(y, 8000 - f, 16000, f) + 1e-30))
        dev = 0.0
        for f in np.linspace(30.0, 0.875 * min(fs, 16000) / 2, 40):
            y = resample(0.5 * np.sin(2 * np.pi * f * t), fs)[300:-300]
            dev = max(dev, abs(20 * np.log10(_amp(y, f, 16000) / 0.5)))
        x = np.random.default_rng(1).standard_normal(fs * 10).astype(np.float32)
        rs = Resampler(fs)
        _, cpu = _best(lambda rs=rs, x=x: rs.process(x), 3)
        out[str(fs)] = {"worst_alias_or_image_db": worst, "passband_dev_db": dev, "delay_samples": rs.delay_samples,
                        "cpu_ms_per_s_audio": cpu / 10 * 1e3}
    return out


def oww_agreement(shared: pathlib.Path) -> dict:
    from edge_assistant.audio.frontend import OwwMelFrontend
    from tests.native.test_oww_mel import _onnx_session, _openwakeword_streaming_mel, _read16k

    sess = _onnx_session()
    files = sorted((shared / "wakeword" / "alexa").glob("*.flac")) + [shared / "wakeword" / "multiple_keywords.wav"]
    files += sorted((shared / "wakeword" / "snowboy").glob("*.flac"))[:50]
    w_stream = w_whole = 0.0
    n = 0
    for p in files:
        x = _read16k(p)
        if x is None or x.size < 1280:
            continue
        x = np.concatenate([np.zeros(16000, np.int16), x, np.zeros(16000, np.int16)])
        x = x[: x.size - x.size % 1280]
        with OwwMelFrontend() as fe:
            ours = fe.process(x)
        w_stream = max(w_stream, float(np.abs(ours - _openwakeword_streaming_mel(x)).max()))
        whole = sess.run(None, {"input": x[None].astype(np.float32)})[0].squeeze() / 10 + 2
        with OwwMelFrontend(clamp_blocks=False) as fe:
            free = fe.process(x)
        active = whole > whole.max() - 8 + 1e-3
        w_whole = max(w_whole, float(np.abs(free - whole)[active].max()))
        n += 1
    return {"clips": n, "max_abs_diff_vs_openwakeword_streaming": w_stream,
            "max_abs_diff_vs_whole_clip_onnx_unclamped_values": w_whole}


def suppressor(shared: pathlib.Path) -> dict:
    import soundfile as sf

    from edge_assistant.audio.frontend import NoiseSuppressor, NoiseSuppressorConfig
    from edge_assistant.audio.noise import car_cabin_noise

    speech = []
    for f in sorted((shared / "speech" / "asr" / "read_speech").glob("*.flac"))[:3]:
        a, sr = sf.read(str(f), dtype="float32")
        if sr == 16000 and a.ndim == 1:
            speech.append(a)
    s = np.concatenate([np.zeros(48000, np.float32), *speech])
    noise = car_cabin_noise(s.size / 16000, seed=3).astype(np.float32)[: s.size]
    d, k = NoiseSuppressor.delay_samples, 48000
    out = {}
    for snr in (5.0, 0.0):
        g = np.sqrt(np.mean(s[k:] ** 2) / np.mean(noise**2) / 10 ** (snr / 10))
        x = (s + g * noise).astype(np.float32)
        with NoiseSuppressor(NoiseSuppressorConfig()) as ns:
            y = ns.process(x)[d:].astype(np.float64)
        xs, ss = x[:-d].astype(np.float64), s[:-d].astype(np.float64)
        before = 10 * np.log10(np.sum(ss[k:] ** 2) / np.sum((xs[k:] - ss[k:]) ** 2))
        after = 10 * np.log10(np.sum(ss[k:] ** 2) / np.sum((y[k:] - ss[k:]) ** 2))
        noise_only = 10 * np.log10(np.sum(y[32000:48000 - d] ** 2) / np.sum(xs[32000:48000 - d] ** 2))
        out[f"{snr:g}dB"] = {"snr_before_db": before, "snr_after_db": after, "gain_db": after - before,
                             "noise_only_attenuation_db": noise_only}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=pathlib.Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    res = {"timing": timing(), "resampler": resampler()}
    if args.shared.exists():
        res["oww_agreement"] = oww_agreement(args.shared)
        res["suppressor"] = suppressor(args.shared)
    text = json.dumps(res, indent=2, default=float)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
