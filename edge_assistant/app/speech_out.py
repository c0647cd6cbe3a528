"""Replies out loud: the answer text synthesised by espeak-ng and played on the ``[speech]`` PCM.

:meth:`SpeechOut.say` runs on the responder thread (espeak-ng takes a few hundred ms, which the responder can
afford and the audio thread could not); playback runs on the :class:`~edge_assistant.audio.playback.Speaker`'s
own thread. A synthesis failure is reported like a playback failure (a ``failed`` event) and never stops the
assistant: the reply text is printed and logged either way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from edge_assistant.audio.playback import FAILED, PlaybackEvent, Speaker
from edge_assistant.audio.speech_synth import SpeechSynthError, synthesize
from edge_assistant.core.config import SpeechSettings

log = logging.getLogger(__name__)

_BRACKETS = re.compile(r"\s*\([^()]*\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def spoken(text: str, max_chars: int) -> str:
    """What a driver hears of an answer: without bracketed details ("(read just now)"), whole sentences up to
    ``max_chars`` (at least the first; 0: no limit)."""
    text = " ".join(_BRACKETS.sub("", text).split())
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    out = ""
    for sentence in _SENTENCE_END.split(text):
        if out and len(out) + 1 + len(sentence) > max_chars:
            break
        out = f"{out} {sentence}" if out else sentence
    return out


class SpeechOut:
    """Speaks reply texts with the voice, speed and PCM of ``settings``; ``on_event`` gets every
    :class:`~edge_assistant.audio.playback.PlaybackEvent` (on the speaker's or the caller's thread)."""

    def __init__(self, settings: SpeechSettings, on_event: Callable[[PlaybackEvent], None]) -> None:
        self.settings = settings
        self._on_event = on_event
        self.speaker = Speaker(settings.device, settings.sample_rate_hz, on_event=on_event)

    def say(self, text: str, tag: Any = None) -> None:
        """Synthesise what is spoken of ``text`` (:func:`spoken`) and queue it (returns once synthesised)."""
        text = spoken(text, self.settings.max_spoken_chars)
        if not text:
            return
        try:
            audio = synthesize(text, voice=self.settings.voice, words_per_minute=self.settings.words_per_minute)
        except SpeechSynthError as exc:
            log.warning("reply not spoken: %s", exc)
            self._on_event(PlaybackEvent(FAILED, tag, 0.0, 0.0, error=str(exc)))
            return
        log.info("saying %r (%.1f s)", text, audio.size / 16000)
        self.speaker.play(audio, tag=tag)

    def stop(self) -> bool:
        """Cut the reply off (barge-in); True when something was playing or queued."""
        return self.speaker.stop()

    @property
    def busy(self) -> bool:
        return self.speaker.busy

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        return self.speaker.wait_idle(timeout_s)

    def close(self) -> None:
        self.speaker.close()
