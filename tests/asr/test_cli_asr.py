"""The ASR subcommands, run in-process through the real CLI entry point."""

from __future__ import annotations

import json

import pytest

from edge_assistant.cli import main


def test_models_verify(asr_cache, capsys):
    assert main(["models", "verify", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    whisper = out["artifacts"][0]
    assert out["ok"] and whisper["artifact"] == "whisper-tiny.en" and whisper["files"] >= 8
    assert all(a["ok"] and not a["corrupt"] and not a["stale"] for a in out["artifacts"])


def test_models_verify_names_a_corrupt_file(asr_cache, tmp_path, capsys):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(asr_cache / "whisper-tiny.en", cache / "whisper-tiny.en")
    (cache / "whisper-tiny.en" / "config.json").write_text("{}")
    assert main(["models", "verify", "--cache", str(cache)]) == 1
    out = capsys.readouterr().out
    assert "whisper-tiny.en: CORRUPT" in out and "config.json" in out


def test_models_build_skips_when_up_to_date(asr_cache, capsys):
    assert main(["models", "build", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["whisper"]["built"] is False
    assert "whisper: up to date" in captured.err


@pytest.mark.shared_data
def test_transcribe_json(asr_cache, speech_data, capsys):
    jfk = speech_data / "asr" / "read_speech" / "jfk.flac"
    assert main(["transcribe", str(jfk), "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["results"][0]
    assert "ask not what your country can do for you" in r["text"].lower()
    assert r["audio_s"] == pytest.approx(11.0, abs=0.01)
    for key in ("features_ms", "encoder_ms", "decoder_ms", "rtf"):
        assert r[key] > 0


def test_transcribe_bad_file_is_reported_and_others_go_on(asr_cache, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    good = tmp_path / "silence.wav"
    sf.write(good, np.zeros(16000, np.float32), 16000)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert main(["transcribe", str(bad), str(good), "--json", "-"]) == 1
    captured = capsys.readouterr()
    assert "broken.wav" in captured.err
    results = json.loads(captured.out)["results"]
    assert "error" in results[0] and results[1]["file"].endswith("silence.wav")


@pytest.mark.shared_data
@pytest.mark.slow
def test_bench_asr_vs_faster_whisper(asr_cache, speech_data, tmp_path, capsys):
    """A two-clip data folder built from real clips (links), both engines, all the JSON keys."""
    src = speech_data / "asr" / "read_speech"
    d = tmp_path / "data"
    d.mkdir()
    lines = (src / "transcripts.tsv").read_text(encoding="utf-8").splitlines()
    (d / "transcripts.tsv").write_text("\n".join(lines[:1] + lines[3:5]) + "\n", encoding="utf-8")
    for line in lines[3:5]:
        (d / line.split("\t")[0]).symlink_to(src / line.split("\t")[0])
    out = tmp_path / "asr.json"
    assert main(["bench", "asr", "--data", str(d), "--json", str(out), "--vs", "faster-whisper"]) == 0
    res = json.loads(out.read_text(encoding="utf-8"))
    assert list(res["peers"]) == ["faster-whisper-beam1", "faster-whisper-beam5"]
    for r in (res, *res["peers"].values()):
        assert r["clips"] == 2
        assert 0 <= r["wer"] <= 0.5
        for w in r["wer_by_normaliser"].values():
            assert w["substitutions"] + w["deletions"] + w["insertions"] == w["errors"]
        assert set(r["wer_by_normaliser"]) == {"ours", "whisper"}
        assert r["latency_ms"]["p50"] > 0 and r["latency_ms"]["p95"] >= r["latency_ms"]["p50"]
        assert r["rtf"] > 0
    assert [p["engine"]["transcribe_kwargs"] for p in res["peers"].values()] == [{"beam_size": 1}, {"beam_size": 5}]
    assert len(res["per_clip"]) == 2 and set(res["per_clip"][0]["peers"]) == set(res["peers"])
    assert set(res["comparison"]) == set(res["peers"]) and set(res["normalisers"]) == {"ours", "whisper"}
    printed = capsys.readouterr().out
    assert "faster-whisper-beam1" in printed and "faster-whisper-beam5" in printed and "WER[whisper]" in printed


def test_bench_asr_bad_tsv_names_file_and_line(asr_cache, tmp_path):
    from edge_assistant.core.errors import DataFormatError

    (tmp_path / "transcripts.tsv").write_text("file\ttext\nmissing_text_column\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"transcripts\.tsv:2"):
        from edge_assistant.bench.asr import load_clips

        load_clips([tmp_path])
    (tmp_path / "transcripts.tsv").write_text("path\tsentence\n", encoding="utf-8")
    assert main(["bench", "asr", "--data", str(tmp_path), "--json", str(tmp_path / "o.json")]) == 1
