"""Build-time tools: they make the model files the device loads; nothing on the device imports them.

* :mod:`.asr` - Whisper tiny.en from CTranslate2's ``model.bin`` to ONNX graphs, int8 quantization
  (``edge-assistant models build``).
* :mod:`.wakeword` - the int8 streaming embedding (static quantization calibrated on speech,
  ``models quantize``), car-noise-adapted heads (``models adapt``) and new heads from synthetic speech
  (``models train-wakeword``).

Each build writes a manifest with SHA-256 checksums beside its files; the run-time side
(:mod:`edge_assistant.asr.model_cache`, :mod:`edge_assistant.wakeword.model_cache`) loads and verifies
them without this package. The device wheel leaves it out (``EDGE_ASSISTANT_WHEEL=runtime``, see
setup.py); its extra dependencies are the ``build`` extra (``pip install -e '.[build]'``).
"""

__all__: list[str] = []
