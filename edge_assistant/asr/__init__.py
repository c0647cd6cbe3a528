"""Speech recognition: Whisper tiny.en converted from CTranslate2 to int8 ONNX, run with onnxruntime.

Modules: ``ct2`` (model.bin reader), ``export`` (ONNX graphs), ``quantize`` (int8), ``model_cache``
(build/verify the cache), ``tokenizer``, ``recognizer`` (:class:`WhisperRecognizer`), ``wer`` (scoring).
Nothing heavy is imported here.
"""

__all__: list[str] = []
