"""Whisper build: ``ct2`` (model.bin reader), ``export`` (ONNX graphs), ``quantize`` (int8), ``whisper``
(the whole build into the model cache)."""
