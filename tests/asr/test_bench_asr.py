"""``bench asr``: the peer runs with faster-whisper's own transcribe defaults; the report's shape."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np


class _FakeModel:
    """Stands in for ``faster_whisper.WhisperModel``: records every transcribe call's keyword arguments."""

    def __init__(self, text: str = " hello world.") -> None:
        self.calls: list[dict] = []
        self.text = text

    def transcribe(self, audio, **kwargs):
        self.calls.append(kwargs)
        return iter([SimpleNamespace(text=t) for t in self.text.split(".") if t]), SimpleNamespace(language="en")


def test_peer_is_configured_with_faster_whisper_defaults():
    """Only beam_size is passed; temperature fallback, best_of, timestamps etc. stay faster-whisper's."""
    from faster_whisper import WhisperModel

    from edge_assistant.bench.asr import PEER_BEAM_SIZES, FasterWhisperPeer

    params = inspect.signature(WhisperModel.transcribe).parameters
    assert params["beam_size"].default == 5 and set(PEER_BEAM_SIZES) == {1, 5}
    assert len(params["temperature"].default) > 1, "faster-whisper's default is a temperature fallback"
    model = _FakeModel()
    for beam in PEER_BEAM_SIZES:
        peer = FasterWhisperPeer(threads=1, beam_size=beam, model=model)
        assert peer.transcribe(np.zeros(16000, np.float32)) == "hello world"
        assert model.calls[-1] == {"beam_size": beam}
        assert peer.engine()["transcribe_kwargs"] == {"beam_size": beam}
        assert set(model.calls[-1]) <= set(params)
    # Without a beam size the peer is faster-whisper's default in every transcribe setting.
    FasterWhisperPeer(threads=1, model=model).transcribe(np.zeros(16000, np.float32))
    assert all(params[k].default == v for k, v in model.calls[-1].items())


def test_peer_loads_the_package_files_on_cpu_int8(monkeypatch):
    import faster_whisper

    from edge_assistant.bench.asr import load_faster_whisper
    from edge_assistant.core.paths import whisper_package_dir

    seen = {}

    def fake_model(path, **kwargs):
        seen.update(kwargs, path=path)
        return _FakeModel()

    monkeypatch.setattr(faster_whisper, "WhisperModel", fake_model)
    load_faster_whisper(threads=2)
    assert seen == {"path": str(whisper_package_dir()), "device": "cpu", "compute_type": "int8", "cpu_threads": 2,
                    "num_workers": 1, "local_files_only": True}


def test_run_asr_bench_reports_both_peer_rows(asr_cache, tmp_path, monkeypatch):
    """Two silent clips, a stand-in peer: two peer rows, S/D/I per normaliser for every system."""
    import soundfile as sf

    from edge_assistant.asr.recognizer import RecognizerConfig
    from edge_assistant.bench import asr as bench_asr

    for name in ("a.wav", "b.wav"):
        sf.write(tmp_path / name, np.zeros(16000, np.float32), 16000)
    (tmp_path / "transcripts.tsv").write_text("file\ttext\na.wav\tHello world.\nb.wav\tTwenty one colours\n",
                                              encoding="utf-8")
    model = _FakeModel(" hello world")
    monkeypatch.setattr(bench_asr, "load_faster_whisper", lambda threads: model)
    res = bench_asr.run_asr_bench([tmp_path], RecognizerConfig(), vs_faster_whisper=True)
    assert set(res["peers"]) == set(res["comparison"]) == {"faster-whisper-beam1", "faster-whisper-beam5"}
    assert [c["beam_size"] for c in model.calls] == [1, 5, 1, 5, 1, 5]  # warm-up, then each clip
    for row in [res, *res["peers"].values()]:
        assert set(row["wer_by_normaliser"]) == {"ours", "whisper"}
        for w in row["wer_by_normaliser"].values():
            assert w["errors"] == w["substitutions"] + w["deletions"] + w["insertions"]
            assert w["words"] == w["substitutions"] + w["deletions"] + w["hits"]
        assert row["wer"] == row["wer_by_normaliser"]["ours"]["wer"]
    beam5 = res["peers"]["faster-whisper-beam5"]
    assert beam5["engine"]["transcribe_kwargs"] == {"beam_size": 5} and beam5["temperature_fallback_clips"] == 0
    # "hello world" for "Twenty one colours": 2 substitutions and 1 deletion (3 reference words).
    assert beam5["wer_by_normaliser"]["ours"]["substitutions"] == 2
    assert beam5["wer_by_normaliser"]["ours"]["deletions"] == 1
    assert beam5["wer_by_normaliser"]["whisper"]["words"] == 4  # "21 colors" is one number word + one
    assert set(res["comparison"]["faster-whisper-beam1"]["wer_delta_points"]) == {"ours", "whisper"}
    assert set(res["normalisers"]) == {"ours", "whisper"} and res["wer_tool"].startswith("jiwer")
    assert set(res["per_clip"][0]["peers"]) == set(res["peers"])
    assert res["per_clip"][0]["peers"]["faster-whisper-beam1"]["errors"] == {"ours": 0, "whisper": 0}
    assert res["engine"]["decoding"] == "greedy"
