"""Grammar-aware recognition: prefer a sentence of the active grammar when the audio fits one.

The grammar comes in as plain data built by the caller (the asr layer knows nothing of intents): a
nested expression of literal text, :func:`seq`, :func:`alt`, :func:`opt`, :func:`names` (one of a long list
of known values, such as a gazetteer of places) and the two slot classes :data:`NUMBER` (digits, as a range
slot is written) and :data:`ANY` (free text, a wildcard slot). It is
compiled into a character-level automaton (Thompson construction) over lower-cased text, so the
templates are never expanded (the car domain would be millions of sentences) and a token is checked by
the characters it writes: one space in a token stands for any run of template spaces, and ``,.?!;:``
may appear anywhere.

Decoding with a grammar (:meth:`GrammarBias.choose`, called by the recogniser):

1. free decoding as without a grammar (greedy or beam); if the grammar accepts its best text (or ``fits``
   says the caller takes it as it is), keep it;
2. ``mode="constrain"``: a beam search in which each beam only expands those of its ``top_k`` most
   likely tokens that keep the text inside the grammar, and may end only where a sentence ends;
   ``mode="rescore"``: the best grammar sentence among the free beam's n-best;
3. the grammar's transcript replaces the free one when its length-normalised log-probability is at most
   ``max_drop`` below the free one's; otherwise the free text stands (speech that is no command).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_assistant.core.errors import ConfigError, DataFormatError

if TYPE_CHECKING:
    from edge_assistant.asr.recognizer import Hypothesis, WhisperRecognizer
    from edge_assistant.asr.tokenizer import WhisperTokenizer

__all__ = ["ANY", "NUMBER", "GrammarBias", "GrammarBiasConfig", "alt", "names", "opt", "seq"]

#: A number written with digits (range slots): digits, then at most one "." or "," with more digits.
NUMBER = ("number",)
#: Free text (wildcard slots): at least one character.
ANY = ("any",)
Expr = str | tuple
_SKIP = frozenset(",.?!;:")
_DIGITS = frozenset("0123456789")
_NUM_SEP = frozenset(".,")
#: Characters that close a sentence (see :meth:`GrammarBias._char`), and the mark of a closed one in a state.
_CLOSERS = frozenset("?!")
_CLOSED = -1
#: First window of :func:`top_k` below the largest value (widened fourfold while it holds fewer than k).
TOP_K_SPAN_NATS = 10.0


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest of ``values`` (a 1-D array; in no particular order), as ``np.argpartition``
    finds them, but first narrowed to the values within a few nats of the largest: Whisper's log-probabilities
    are peaked, so the partition sorts dozens of values instead of 51,865 (0.5 ms a call, a third of a
    constrained search)."""
    n = values.size
    if k >= n:
        return np.arange(n)
    top = float(values.max())
    span = TOP_K_SPAN_NATS
    while span <= TOP_K_SPAN_NATS * 64:
        idx = np.flatnonzero(values >= top - span)
        if idx.size >= k:
            return idx[np.argpartition(values[idx], idx.size - k)[idx.size - k:]]
        span *= 4
    return np.argpartition(values, n - k)[n - k:]


def seq(*items: Expr) -> tuple:
    """The items one after the other (write the spaces between words into the text)."""
    return ("seq", tuple(items))


def alt(*items: Expr) -> tuple:
    """One of the items."""
    return ("alt", tuple(items))


def opt(item: Expr) -> tuple:
    """The item or nothing."""
    return ("alt", (item, ""))


def names(values: Iterable[str]) -> tuple:
    """One of ``values`` (each written as it is said: "new york"). Unlike :func:`alt`, every use of the same
    list shares one character trie in the compiled automaton, so a gazetteer of thousands of places costs its
    trie once however many sentences refer to it."""
    vals = tuple(sorted({v.strip().lower() for v in values if v.strip()}))
    if not vals:
        raise DataFormatError("grammar", "names() without a value; expected at least one")
    return ("names", vals)


@dataclass(frozen=True)
class GrammarBiasConfig:
    """How strongly the grammar is preferred."""

    mode: str = "constrain"
    """"constrain": constrained beam search; "rescore": pick from the free beam's n-best (needs beam > 1)."""
    max_drop: float = 2.0
    """Largest loss in log-probability per token (nats) accepted for a grammar transcript over the free one.
    Chosen on development sets only (88 synthetic commands of sampling seed 8, 100 synthetic non-command
    sentences): 1.0 → 2.0 took command acceptance from 70.5 to 77.3 % clean and 39.8 to 48.9 % in car noise at
    6 dB, with the same false accepts on the non-commands (2 clean, 3 in noise, all "let's go to …")."""
    beam_size: int = 4
    """Beams of the constrained search (independent of the free decoding's beam)."""
    top_k: int = 40
    """Most likely tokens per beam and step checked against the grammar."""
    known_max_drop: float = 1.0
    """Largest loss in log-probability per token (nats) accepted for narrowing a free-text slot to a known value
    (a place of the gazetteer) over the free text the grammar took."""

    def __post_init__(self) -> None:
        if self.mode not in ("constrain", "rescore"):
            raise ConfigError(f"grammar mode: {self.mode!r}; expected 'constrain' or 'rescore'")
        if not 0.0 <= self.max_drop <= 20.0:
            raise ConfigError(f"grammar max_drop: {self.max_drop}; expected 0..20 nats per token")
        if not 1 <= self.beam_size <= 16:
            raise ConfigError(f"grammar beam_size: {self.beam_size}; expected 1..16")
        if not 1 <= self.top_k <= 1000:
            raise ConfigError(f"grammar top_k: {self.top_k}; expected 1..1000")
        if not 0.0 <= self.known_max_drop <= 20.0:
            raise ConfigError(f"grammar known_max_drop: {self.known_max_drop}; expected 0..20 nats per token")


#: Tokens the narrowed search (``known``) may write beyond the transcript it re-reads.
KNOWN_EXTRA_TOKENS = 5

#: Entries per generation of each of the automaton's memos (state sets after a character, a token, epsilons).
#: The sets a wildcard can reach have no bound, so a memo of every one grew the device by about 0.1 MB per
#: recognition of unfamiliar speech (the soak, benchmarks/RESULTS.md); at most two generations are kept (about
#: 170 bytes an entry).
MEMO_LIMIT = 20_000


class _Memo:
    """A memo that keeps at most two generations of ``limit`` entries: when the new one is full it becomes the
    old one (the one before is dropped) and a new one starts; an old entry used again moves to the new one, so
    what is in use stays and what is not is forgotten."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._new: dict = {}
        self._old: dict = {}

    def __len__(self) -> int:
        return len(self._new) + len(self._old)

    def get(self, key: Hashable) -> Any:
        hit = self._new.get(key)
        if hit is None:
            hit = self._old.pop(key, None)
            if hit is not None:
                self.put(key, hit)
        return hit

    def put(self, key: Hashable, value: Any) -> None:
        if len(self._new) >= self.limit:
            self._old, self._new = self._new, {}
        self._new[key] = value


#: States at and above this number stand for (use of a :func:`names` list, node of its trie): ``_VIRTUAL +
#: (use << _NODE_BITS) + node``. A trie is stored once; each use only records where it goes on after a name.
_VIRTUAL = 1 << 40
_NODE_BITS = 24


def _virtual(use: int, node: int) -> int:
    return _VIRTUAL + (use << _NODE_BITS) + node


def _use_node(state: int) -> tuple[int, int]:
    """(use, trie node) of a virtual state."""
    return divmod(state - _VIRTUAL, 1 << _NODE_BITS)


class _Automaton:
    """Character NFA: ``chars[s]`` char -> targets, ``classes[s]`` (class, target), ``eps[s]`` targets; plus the
    tries of :func:`names` lists (``trie_next[node]`` char -> node, ``trie_end``: nodes that end a value), entered
    through virtual states (see :data:`_VIRTUAL`) whose continuation is ``uses[use]``."""

    def __init__(self) -> None:
        self.chars: list[dict[str, list[int]]] = []
        self.classes: list[list[tuple[str, int]]] = []
        self.eps: list[list[int]] = []
        self.numeric: set[int] = set()  # states inside a number, where punctuation is not skipped
        self.trie_next: list[dict[str, int]] = []
        self.trie_end: set[int] = set()
        self._trie_roots: dict[tuple[str, ...], int] = {}
        self.uses: list[int] = []
        self._closure: _Memo = _Memo(MEMO_LIMIT)
        self._moves: _Memo = _Memo(MEMO_LIMIT)

    def new(self) -> int:
        self.chars.append({})
        self.classes.append([])
        self.eps.append([])
        return len(self.eps) - 1

    def build(self, expr: Expr, start: int, where: str) -> int:
        """Add ``expr`` after state ``start``; returns its end state."""
        if isinstance(expr, str):
            s = start
            for c in expr.lower():
                t = self.new()
                self.chars[s].setdefault(c, []).append(t)
                s = t
            return s
        if not isinstance(expr, tuple) or not expr:
            raise DataFormatError(where, f"{type(expr).__name__} {expr!r}; expected text, seq, alt, opt, NUMBER or ANY")
        kind = expr[0]
        if expr == ANY:  # one character of a word, then anything
            s = self.new()
            self.classes[start].append(("word", s))
            self.classes[s].append(("all", s))
            return s
        if kind == "names" and len(expr) == 2 and expr[1]:
            root = self._trie(expr[1])
            end = self.new()
            if len(self.trie_next) >= 1 << _NODE_BITS:
                raise DataFormatError(where, f"names lists of {len(self.trie_next)} trie nodes; at most {1 << _NODE_BITS}")
            self.uses.append(end)
            self.eps[start].append(_virtual(len(self.uses) - 1, root))
            return end
        if expr == NUMBER:  # digits, then at most one "." or "," and more digits ("21", "21.5", "20,000")
            whole, sep, frac, end = self.new(), self.new(), self.new(), self.new()
            self.classes[start].append(("digit", whole))
            self.classes[whole] += [("digit", whole), ("sep", sep)]
            self.classes[sep].append(("digit", frac))
            self.classes[frac].append(("digit", frac))
            self.eps[whole].append(end)
            self.eps[frac].append(end)
            self.numeric |= {whole, sep, frac}
            return end
        if kind == "seq" and len(expr) == 2:
            s = start
            for i, item in enumerate(expr[1]):
                s = self.build(item, s, f"{where}/seq[{i}]")
            return s
        if kind == "alt" and len(expr) == 2 and expr[1]:
            end = self.new()
            for i, item in enumerate(expr[1]):
                s = self.new()
                self.eps[start].append(s)
                self.eps[self.build(item, s, f"{where}/alt[{i}]")].append(end)
            return end
        raise DataFormatError(where, f"{expr!r:.60}; expected ('seq', items), ('alt', items), ('names', values), "
                                     "NUMBER or ANY")

    def _trie(self, values: tuple[str, ...]) -> int:
        """The root of the trie of ``values`` (built once per distinct list)."""
        root = self._trie_roots.get(values)
        if root is None:
            root = self._trie_roots[values] = len(self.trie_next)
            self.trie_next.append({})
            for v in values:
                node = root
                for c in v:
                    nxt = self.trie_next[node].get(c)
                    if nxt is None:
                        nxt = self.trie_next[node][c] = len(self.trie_next)
                        self.trie_next.append({})
                    node = nxt
                self.trie_end.add(node)
        return root

    def _eps(self, s: int) -> Iterable[int]:
        if s < _VIRTUAL:
            return self.eps[s]
        use, node = _use_node(s)
        return (self.uses[use],) if node in self.trie_end else ()

    def next_chars(self, s: int) -> Iterable[str]:
        """The characters state ``s`` has a transition on (classes aside)."""
        return self.chars[s] if s < _VIRTUAL else self.trie_next[_use_node(s)[1]]

    def closure(self, states: frozenset[int]) -> frozenset[int]:
        hit = self._closure.get(states)
        if hit is not None:
            return hit
        out, todo = set(states), list(states)
        while todo:
            for t in self._eps(todo.pop()):
                if t not in out:
                    out.add(t)
                    todo.append(t)
        res = frozenset(out)
        self._closure.put(states, res)
        return res

    def _move1(self, states: Iterable[int], c: str) -> set[int]:
        out: set[int] = set()
        for s in states:
            if s >= _VIRTUAL:
                use, node = _use_node(s)
                nxt = self.trie_next[node].get(c)
                if nxt is not None:
                    out.add(_virtual(use, nxt))
                continue
            out.update(self.chars[s].get(c, ()))
            for cls, t in self.classes[s]:
                if (cls == "all" or (cls == "word" and c != " ") or (cls == "digit" and c in _DIGITS)
                        or (cls == "sep" and c in _NUM_SEP)):
                    out.add(t)
        return out

    def move(self, states: frozenset[int], c: str) -> frozenset[int]:
        """States after the character ``c`` (closed under epsilon)."""
        key = (states, c)
        hit = self._moves.get(key)
        if hit is not None:
            return hit
        nxt = self.closure(frozenset(self._move1(states, c)))
        if c == " ":  # one space stands for a run of template spaces (skipped optionals leave two)
            grown = nxt
            while True:
                more = self.closure(frozenset(self._move1(grown, " ")) | grown)
                if more == grown:
                    break
                grown = more
            nxt = grown
        elif c in _SKIP:  # punctuation may stand anywhere, except inside a number ("20.5" is not "205")
            nxt = nxt | frozenset(st for st in states if st not in self.numeric)
        self._moves.put(key, nxt)
        return nxt


class GrammarBias:
    """A compiled grammar the recogniser can prefer (``transcribe(audio, grammar=bias)``).

    ``grammar``: an expression (see the module docstring) or an iterable of them (one per sentence
    template; each is one alternative). ``tokenizer``: the recogniser's :class:`WhisperTokenizer`.
    ``fits``: a free transcript the caller takes as it is, with no constrained search (its own reading of the
    text, "80%" as "80 percent"); without it, only a text the grammar accepts as written. ``known``: the same
    grammar with its free-text slots narrowed to known values (:func:`names`, a gazetteer of places): a
    transcript whose free text is none of them is searched again inside ``known`` and replaced when that costs at
    most ``config.known_max_drop`` (see :meth:`choose`).
    """

    def __init__(self, grammar: Expr | Iterable[Expr], tokenizer: WhisperTokenizer,
                 config: GrammarBiasConfig | None = None, fits: Callable[[str], bool] | None = None,
                 known: GrammarBias | None = None) -> None:
        self.config = config or GrammarBiasConfig()
        self.tokenizer = tokenizer
        self.fits = fits
        self.known = known
        items = (grammar,) if isinstance(grammar, (str, tuple)) else tuple(grammar)
        if not items:
            raise DataFormatError("grammar", "no sentences; expected at least one template")
        nfa = _Automaton()
        start = nfa.new()
        body = nfa.new()
        nfa.chars[start][" "] = [body]  # transcripts start with a space-prefixed token
        nfa.eps[start].append(body)
        self.final = nfa.build(("alt", items), body, "grammar")
        self._nfa = nfa
        self._start = nfa.closure(frozenset({start}))
        # A sentence may end where only template spaces (and epsilons) are left before the final state.
        back: dict[int, list[int]] = {}
        for s_ in range(len(nfa.eps)):
            for t in (*nfa.eps[s_], *nfa.chars[s_].get(" ", ())):
                back.setdefault(t, []).append(s_)
        ends, todo = {self.final}, [self.final]
        while todo:
            for s_ in back.get(todo.pop(), ()):
                if s_ not in ends:
                    ends.add(s_)
                    todo.append(s_)
        self._ends = frozenset(ends)
        self._texts: dict[int, str] = {}
        self._tokens: _Memo = _Memo(MEMO_LIMIT)

    @property
    def states(self) -> int:
        """Size of the compiled automaton."""
        return len(self._nfa.eps)

    def initial(self) -> frozenset[int]:
        return self._start

    def _text(self, token: int) -> str:
        t = self._texts.get(token)
        if t is None:
            t = self._texts[token] = self.tokenizer.token_text(token).lower()
        return t

    def advance(self, state: frozenset[int], token: int) -> frozenset[int]:
        """The state after ``token`` (empty: the token leaves the grammar)."""
        key = (state, token)
        hit = self._tokens.get(key)
        if hit is not None:
            return hit
        text = self._text(token)
        s = state if text else frozenset()
        for c in text:
            s = self._char(s, c)
            if not s:
                break
        self._tokens.put(key, s)
        return s

    def _char(self, s: frozenset[int], c: str) -> frozenset[int]:
        """The state after one character of a transcript. A question or exclamation mark closes the sentence: it
        stands only where a sentence may end, and only punctuation and spaces follow it, so a free-text slot
        cannot take in Whisper's repetition of the sentence ("to some music? Can I make it some music?")."""
        if _CLOSED in s:
            return s if c in _SKIP or c == " " else frozenset()
        if c in _CLOSERS:
            ends = s & self._ends
            return ends | {_CLOSED} if ends else frozenset()
        return self._nfa.move(s, c)

    def can_end(self, state: frozenset[int]) -> bool:
        return not self._ends.isdisjoint(state)

    def _walk_text(self, text: str) -> frozenset[int]:
        """The state after a transcript's text (empty: it left the grammar)."""
        s = self._nfa.move(self._start, " ")
        for c in text.strip().lower():
            s = self._char(s, c)
            if not s:
                break
        return s

    def is_prefix(self, text: str) -> bool:
        """True when ``text`` is the beginning of at least one sentence of the grammar (or a whole one)."""
        return bool(self._walk_text(text))

    def continues_word(self, text: str) -> bool:
        """True when a sentence of the grammar goes on from ``text`` inside its last word ("turn on the heat" →
        "heated seats", "21" → "215", a free-text slot): the audio may have been cut mid-word. A hyphen joins
        another word ("Hamburg" → "Hamburg-Mitte"), as a space does."""
        nfa = self._nfa
        states = self._walk_text(text)
        if _CLOSED in states:
            return False
        for st in states:
            if any(c not in " -" and c not in _SKIP for c in nfa.next_chars(st)):
                return True
            if st < _VIRTUAL and any(cls in ("digit", "word", "all") for cls, _ in nfa.classes[st]):
                return True
        return False

    def accepts_text(self, text: str) -> bool:
        """True when ``text`` (a transcript) is a sentence of the grammar."""
        return self.can_end(self._walk_text(text))

    def expand(self, state: frozenset[int], logprobs: np.ndarray, tokenizer: WhisperTokenizer
               ) -> Iterator[tuple[int, frozenset[int]]]:
        """(token, next state) for the ``top_k`` most likely tokens that stay in the grammar, and EOT
        where a sentence may end."""
        eot = tokenizer.tokens.eot
        if self.can_end(state) and np.isfinite(logprobs[eot]):
            yield eot, state
        for t in top_k(logprobs, self.config.top_k):
            t = int(t)
            if t < eot and np.isfinite(logprobs[t]):
                nxt = self.advance(state, t)
                if nxt:
                    yield t, nxt

    def _in_grammar(self, text: str) -> bool:
        return self.accepts_text(text) or (self.fits is not None and self.fits(text))

    def choose(self, rec: WhisperRecognizer, hyps: list[Hypothesis], cross: dict[str, np.ndarray], budget: int,
               first: tuple[np.ndarray, list[Any]], extra: dict) -> Hypothesis:
        """The hypothesis to report: free, rescored or constrained (``extra`` records which and why).

        With ``known``, a result inside the grammar whose free text is no known value ("can I make it to some
        music") is searched once more with the free text narrowed to the known values; the known sentence
        replaces it when its length-normalised log-probability is at most ``known_max_drop`` below. A place
        that is not in the list keeps its free text when the audio does not fit any known one that well."""
        pick = self._choose(rec, hyps, cross, budget, first, extra)
        known = self.known
        if known is None or extra["grammar"] in ("free_no_fit", "free_better"):
            return pick
        text = rec.tokenizer.decode(pick.tokens)
        if known._in_grammar(text):
            return pick
        # a place read differently changes the length by a few tokens: a longer search finds nothing better
        budget = min(budget, len(pick.tokens) + KNOWN_EXTRA_TOKENS)
        found = rec.beam_search(cross, budget, known.config.beam_size, grammar=known, first=first)
        alt_pick = next((h for h in found if h.reason == "eot"), None)
        if alt_pick is None:
            extra["known"] = "no_fit"
            return pick
        extra.update(known_text=rec.tokenizer.decode(alt_pick.tokens), known_score=alt_pick.score)
        if alt_pick.score < pick.score - self.config.known_max_drop:
            extra["known"] = "free_text_better"
            return pick
        extra["known"] = "replaced"
        return alt_pick

    def _choose(self, rec: WhisperRecognizer, hyps: list[Hypothesis], cross: dict[str, np.ndarray], budget: int,
                first: tuple[np.ndarray, list[Any]], extra: dict) -> Hypothesis:
        cfg, tok = self.config, rec.tokenizer
        free = hyps[0]
        free_text = tok.decode(free.tokens)
        extra.update(free_text=free_text, free_score=free.score)
        if self.accepts_text(free_text):
            extra["grammar"] = "free_in_grammar"
            return free
        if self.fits is not None and self.fits(free_text):
            extra["grammar"] = "free_fits"
            return free
        pick = None
        if cfg.mode == "rescore":
            pick = next((h for h in hyps[1:] if self.accepts_text(tok.decode(h.tokens))), None)
        else:
            found = rec.beam_search(cross, budget, cfg.beam_size, grammar=self, first=first)
            pick = next((h for h in found if h.reason == "eot"), None)
        if pick is None:
            extra["grammar"] = "free_no_fit"
            return free
        extra["grammar_text"] = tok.decode(pick.tokens)
        extra["grammar_score"] = pick.score
        if pick.score < free.score - cfg.max_drop:
            extra["grammar"] = "free_better"
            return free
        extra["grammar"] = "rescored" if cfg.mode == "rescore" else "constrained"
        return pick
