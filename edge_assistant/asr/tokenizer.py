"""Whisper's tokenizer (the shipped ``tokenizer.json`` through the ``tokenizers`` package) and its token lists."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_assistant.core.errors import ModelFileError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WhisperTokens:
    """Special token ids and suppress lists for one model."""

    eot: int
    sot: int
    no_timestamps: int
    no_speech: int | None
    prompt: tuple[int, ...]  # the decoder prompt after <|startoftranscript|>, ending in <|notimestamps|>
    suppress: tuple[int, ...]  # never emitted (config.json suppress_ids + every special token but EOT)
    suppress_begin: tuple[int, ...]  # also banned as the first token (blank, EOT)
    multilingual: bool


class WhisperTokenizer:
    """Text <-> ids, plus the ids decoding needs."""

    def __init__(self, tokenizer_json: str | Path, config_json: str | Path, n_vocab: int) -> None:
        from tokenizers import Tokenizer

        tokenizer_json, config_json = Path(tokenizer_json), Path(config_json)
        try:
            self._tok = Tokenizer.from_file(str(tokenizer_json))
        except Exception as exc:  # tokenizers raises a bare Exception with serde's message
            raise ModelFileError(tokenizer_json, f"not a tokenizers JSON file ({exc})") from None
        try:
            config = json.loads(config_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelFileError(config_json, f"cannot read model config ({exc})") from None
        for key in ("suppress_ids", "suppress_ids_begin"):
            if not isinstance(config.get(key), list) or not all(isinstance(i, int) for i in config[key]):
                raise ModelFileError(config_json, f"key {key!r} missing or not a list of token ids")
        self.n_vocab = n_vocab
        self.tokens = self._special(tokenizer_json, config, n_vocab)

    def _id(self, path: Path, token: str, required: bool = True) -> int | None:
        tid = self._tok.token_to_id(token)
        if tid is None and required:
            raise ModelFileError(path, f"special token {token} missing from the vocabulary")
        return tid

    def _special(self, path: Path, config: dict, n_vocab: int) -> WhisperTokens:
        eot = self._id(path, "<|endoftext|>")
        sot = self._id(path, "<|startoftranscript|>")
        no_ts = self._id(path, "<|notimestamps|>")
        no_speech = self._id(path, "<|nospeech|>", False) or self._id(path, "<|nocaptions|>", False)
        # Multilingual vocabularies have 51865 entries and want <|lang|><|transcribe|>; .en models do not.
        multilingual = n_vocab >= 51865
        prompt: tuple[int, ...] = (no_ts,)
        if multilingual:
            prompt = (self._id(path, "<|en|>"), self._id(path, "<|transcribe|>"), no_ts)
        # Every id from EOT upwards except EOT itself is a control token or a timestamp (ids past the
        # tokenizer's vocabulary): none may appear in a no-timestamps transcript.
        specials = [i for i in range(eot + 1, n_vocab)]
        suppress = sorted({i for i in config["suppress_ids"] if 0 <= i < n_vocab} | set(specials))
        begin = sorted({i for i in config["suppress_ids_begin"] if 0 <= i < n_vocab} | {eot})
        return WhisperTokens(eot, sot, no_ts, no_speech, prompt, tuple(suppress), tuple(begin), multilingual)

    def suppress_mask(self, begin: bool) -> np.ndarray:
        """Additive logit mask: 0 where allowed, -inf where suppressed."""
        mask = np.zeros(self.n_vocab, np.float32)
        mask[list(self.tokens.suppress)] = -np.inf
        if begin:
            mask[list(self.tokens.suppress_begin)] = -np.inf
        return mask

    def decode(self, ids: list[int]) -> str:
        """Text of the (non-special) ids, stripped."""
        ids = [i for i in ids if i < self.tokens.eot]
        return self._tok.decode(ids, skip_special_tokens=True).strip()

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def token_text(self, token: int) -> str:
        """The text of one id as it appears inside a transcript (leading space kept; '' for specials)."""
        if token >= self.tokens.eot:
            return ""
        return self._tok.decode([token], skip_special_tokens=True)
