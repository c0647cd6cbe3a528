"""``bench wake`` and ``bench latency`` on a handful of real clips: keys, unreadable files, plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_assistant.cli import main

pytestmark = pytest.mark.shared_data

KEYS = {"model", "threshold", "positives", "detected", "wake_rate", "negatives", "negative_hours",
        "false_accepts", "fa_per_hour", "unreadable", "curve"}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory, wakeword_data: Path) -> tuple[Path, Path]:
    """Links to 6 alexa clips (2 of them damaged) and 4 negatives; nothing is copied."""
    root = tmp_path_factory.mktemp("bench")
    pos, neg = root / "pos", root / "neg"
    pos.mkdir()
    neg.mkdir()
    for name in ("0.flac", "1.flac", "2.flac", "126.flac", "127.flac", "3.flac"):
        (pos / name).symlink_to(wakeword_data / "alexa" / name)
    for folder in ("jarvis", "snowboy"):
        for p in sorted((wakeword_data / folder).iterdir())[:2]:
            (neg / f"{folder}_{p.name}").symlink_to(p)
    return pos, neg


def test_bench_wake_quiet_json_and_plot(small_set, tmp_path: Path, capsys) -> None:
    pos, neg = small_set
    out, png = tmp_path / "wake.json", tmp_path / "curve.png"
    rc = main(["bench", "wake", "--model", "alexa", "--positives", str(pos), "--negatives", str(neg),
               "--threshold", "0.5", "0.8", "--json", str(out), "--plot", str(png)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r.keys() >= KEYS
    assert (r["positives"], r["detected"], r["negatives"], r["false_accepts"]) == (4, 4, 4, 0)
    assert r["wake_rate"] == 1.0 and r["fa_per_hour"] == 0.0 and 0 < r["negative_hours"] < 0.01
    assert sorted(Path(u["path"]).name for u in r["unreadable"]) == ["126.flac", "127.flac"]
    assert all("damaged" in u["error"] for u in r["unreadable"])
    assert [t["threshold"] for t in r["runs"][0]["thresholds"]] == [0.5, 0.8]
    curve = {c["threshold"]: c for c in r["curve"]}
    assert {0.05, 0.5, 0.8, 0.95} <= curve.keys()
    assert all(a["wake_rate"] >= b["wake_rate"] for a, b in zip(r["curve"], r["curve"][1:], strict=False))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "unreadable" in capsys.readouterr().out


def test_bench_wake_car_noise_two_snrs(small_set, tmp_path: Path) -> None:
    pos, neg = small_set
    out = tmp_path / "noisy.json"
    args = ["bench", "wake", "--positives", str(pos), "--negatives", str(neg), "--noise", "car",
            "--snr", "5", "20", "--suppress-noise", "--json", str(out)]
    assert main(args) == 0
    r = json.loads(out.read_text())
    assert [run["snr_db"] for run in r["runs"]] == [5.0, 20.0]
    assert r["snr_db"] == 5.0 and r["noise"] == "car" and r["noise_suppression"] is True
    assert r["runs"][1]["detected"] >= 3
    assert main([*args[:-1], str(tmp_path / "again.json")]) == 0  # seeded: the same result again
    assert json.loads((tmp_path / "again.json").read_text())["runs"] == r["runs"]


def test_bench_wake_compare_scores_each_head_as_its_own_run(small_set, tmp_path: Path) -> None:
    """Heads compared in one pass get exactly the figures of their own runs, each at its own operating point."""
    from edge_assistant.bench.wake import WakeBenchConfig, run_wake_bench

    pos, neg = small_set
    common = {"positives": (str(pos),), "negatives": (str(neg),), "noise": "car", "snr_db": (5.0,),
              "noise_suppression": True, "progress": False}
    both = run_wake_bench(WakeBenchConfig(model="alexa", compare=("hey_jarvis",), **common))
    assert [r["model"] for r in both["runs"]] == ["alexa", "hey_jarvis"]
    for run in both["runs"]:
        alone = run_wake_bench(WakeBenchConfig(model=run["model"], **common))["runs"][0]
        assert run == alone


def test_bench_wake_counts_false_accepts_per_event_and_after_the_verifier(small_set, tmp_path: Path) -> None:
    """A long negative that fires three times is one clip but three events; the verifier block and timing
    follow the same events (every proposal verified once, none accepted that the head did not propose)."""
    import numpy as np
    import soundfile as sf

    from edge_assistant.audio.io import read_audio
    from edge_assistant.bench.wake import WakeBenchConfig, run_wake_bench

    pos, neg = small_set
    word = read_audio(pos / "0.flac", "float32")
    gap = np.zeros(3 * 16000, np.float32)
    long_neg = tmp_path / "neg" / "long"
    long_neg.mkdir(parents=True)
    sf.write(long_neg / "three.wav", np.concatenate([word, gap] * 3), 16000)
    for p in sorted(neg.iterdir()):
        (tmp_path / "neg" / p.name).symlink_to(p.resolve())
    cfg = WakeBenchConfig(model="alexa", positives=(str(pos),), negatives=(str(tmp_path / "neg"),),
                          verifier="whisper", chunk_ms=80.0, progress=False)
    r = run_wake_bench(cfg)
    assert (r["false_accepts"], r["false_accept_events"]) == (1, 3)
    assert r["negative_sets"]["neg/long"]["false_accept_events"] == 3
    assert r["negative_sets"]["neg"]["clips"] == 4 and r["negative_sets"]["neg"]["false_accept_events"] == 0
    v = r["verifier"]
    assert v["verifier"] == "whisper" and v["phrase"] == "alexa"
    assert v["proposals"] == {"positives": 4, "negatives": 3}  # every head event was verified
    assert v["detected"] <= r["detected"] and v["false_accept_events"] <= 3
    assert set(v["missed"]) >= set(r["missed"])
    t = r["timing"][0]
    assert t["verifier_ms"]["alexa:alexa"]["n"] == 7 and t["verifier_ms"]["alexa:alexa"]["p50"] > 0
    assert t["negatives"]["us_per_step"] > t["negatives"]["us_per_step_without_verifier"] > 0
    off = run_wake_bench(WakeBenchConfig(**{**cfg.__dict__, "verifier": "off"}))
    assert off["verifier"] is None and off["timing"][0]["verifier_ms"] == {}
    assert {k: off[k] for k in ("detected", "false_accepts", "false_accept_events")} == {
        k: r[k] for k in ("detected", "false_accepts", "false_accept_events")}


def test_bench_latency_keys(small_set, tmp_path: Path) -> None:
    from edge_assistant.bench.latency import run_latency_bench
    from edge_assistant.modelbuild.wakeword.quantize import quantize_embedding

    pos, _ = small_set
    int8 = quantize_embedding(method="dynamic", out_path=tmp_path / "q.onnx").path
    r = run_latency_bench([pos], max_clips=2, latency_clips=4, rounds=1, int8_model_path=int8, progress=False)
    for key in ("frontend_us_per_chunk", "reference_frontend_us_per_chunk", "pipeline_us_per_chunk",
                "pipeline_int8_us_per_chunk", "reference_pipeline_us_per_chunk"):
        assert r[key] > 0
    assert {"p50", "p95"} <= r["detection_latency_ms"].keys()
    assert r["detection_latency_ms"]["clips"] == 4 and len(r["unreadable"]) == 2


def test_keyword_end_on_synthetic_word() -> None:
    import numpy as np

    from edge_assistant.bench.latency import keyword_end_s

    rng = np.random.default_rng(0)
    x = 0.001 * rng.standard_normal(32000)  # noise floor
    x[8000:12000] += 0.3 * np.sin(np.arange(4000) * 0.2)  # "syllable" 1
    x[13000:17600] += 0.2 * np.sin(np.arange(4600) * 0.3)  # "syllable" 2 after a 60 ms pause
    x[28000:28200] += 0.3  # a click long after the word is not the word
    assert keyword_end_s(x) == pytest.approx(1.1, abs=0.011)


def test_wake_cli_prints_detections(wakeword_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "w.json"
    rc = main(["wake", str(wakeword_data / "multiple_keywords.wav"), str(wakeword_data / "alexa" / "126.flac"),
               "--model", "alexa", "--model", "hey_jarvis", "--json", str(out)])
    assert rc == 1  # one unreadable file
    r = json.loads(out.read_text())
    dets = r["files"][0]["detections"]
    assert [d["model"] for d in dets] == ["alexa"] and 8.0 <= dets[0]["time_s"] <= 9.5
    assert "damaged" in r["files"][1]["error"]
    assert "alexa" in capsys.readouterr().out
