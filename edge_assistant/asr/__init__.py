"""Speech recognition: Whisper tiny.en converted from CTranslate2 to int8 ONNX, run with onnxruntime.

Modules: ``model_cache`` (load/verify the cache), ``tokenizer``, ``recognizer`` (:class:`WhisperRecognizer`),
``wer`` (scoring). The conversion itself is in :mod:`edge_assistant.modelbuild.asr` (build time only).
Nothing heavy is imported here.
"""

__all__: list[str] = []
