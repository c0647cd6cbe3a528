"""Audio: the only user of the C front end (:mod:`edge_assistant._native`).

* :mod:`.frontend` - Python owners of the C handles: streaming openWakeWord log-mel features
  (``OwwMelFrontend``), Whisper's log-mel (``WhisperLogMel``), the polyphase ``Resampler`` /
  ``resample`` (8, 22.05, 44.1, 48 kHz -> 16 kHz), DC removal ``HighPass`` and the stationary/tonal
  ``NoiseSuppressor``. The C contract (units, ownership, threading, the 80 dB clamp decision, filter
  figures, delays) is ``native/include/ea/frontend.h``.
* :mod:`.io` - WAV/FLAC reading as 16 kHz mono; :mod:`.noise` - car-cabin noise and SNR mixing.

Heavy modules are imported by the caller (``from edge_assistant.audio.frontend import ...``); importing
this package loads nothing.
"""
