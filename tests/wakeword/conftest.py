"""Shared real-data fixtures for the wake-word tests.

The reference is openwakeword 0.4.0's own ``Model`` (the oracle), run once per clip in a fresh state
(exactly what a new ``Model`` holds), with ``predict_clip`` (1 s of silence before and after, 1280-sample
chunks). Its embedding network costs ~1.3 ms per 80 ms step, so the ~115,000 steps of all clips are
spread over two spawned worker processes (no fork of a process holding onnxruntime threads); our
engine runs in this process meanwhile.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.audio.io import iter_audio_files, read_audio
from edge_assistant.core.errors import AudioFileError

from ._reference import reference_scores

NEGATIVE_FOLDERS = ("jarvis", "smart_mirror", "snowboy", "view_glass")


@dataclass(frozen=True)
class ClipSet:
    paths: list[str]
    pcm: list[np.ndarray]
    unreadable: list[tuple[str, str]]


def _load(dirs: list[Path]) -> ClipSet:
    paths, pcm, bad = [], [], []
    for p in iter_audio_files(dirs):
        try:
            pcm.append(read_audio(p, "int16"))
            paths.append(str(p))
        except AudioFileError as exc:
            bad.append((str(p), exc.reason))
    return ClipSet(paths, pcm, bad)


@pytest.fixture(scope="session")
def alexa_clips(wakeword_data: Path) -> ClipSet:
    return _load([wakeword_data / "alexa"])


@pytest.fixture(scope="session")
def negative_clips(wakeword_data: Path) -> ClipSet:
    return _load([wakeword_data / d for d in NEGATIVE_FOLDERS])


@pytest.fixture(scope="session")
def reference_run(alexa_clips: ClipSet, negative_clips: ClipSet):
    """Start the reference on all clips in 2 worker processes; the fixture value resolves the results."""
    paths = alexa_clips.paths + negative_clips.paths
    workers = max(1, min(2, os.cpu_count() or 1))
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    # interleave so both workers get a similar mix of clip lengths
    shards = [paths[i::workers * 8] for i in range(workers * 8)]
    futures = [pool.submit(reference_scores, s) for s in shards]

    def results() -> dict[str, np.ndarray]:
        got: dict[str, np.ndarray] = {}
        for s, f in zip(shards, futures, strict=True):
            got.update(zip(s, f.result(), strict=True))
        return got

    yield results
    pool.shutdown(wait=True, cancel_futures=True)
