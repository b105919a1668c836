"""The semantic cache's search: an in-process numpy index of unit vectors, grouped by scope.

A lookup compares the prompt's vector with the vectors of its own scope only (one matrix product), so its cost grows
with the entries of that scope, not of the whole cache. Each replica keeps one of these; in shared mode it is filled
from the Redis log (:mod:`llm_manager.cache.semantic_store`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from llm_manager.cache.semantic_guard import Words, words

__all__ = ["Entry", "LocalIndex"]


@dataclass(slots=True, eq=False)
class Entry:
    """One cached answer: the prompt it answered, its vector, and the response as stored bytes."""

    id: str
    scope: str
    text: str
    vector: np.ndarray
    value: bytes
    expires: float
    words: Words = field(init=False)

    def __post_init__(self) -> None:
        self.words = words(self.text)


class _Group:
    """The entries of one scope and their vectors, rows of one matrix grown by doubling: adding or removing an entry
    costs one row copy, never a rebuild (a removed row is filled with the last one)."""

    __slots__ = ("entries", "matrix", "where")

    def __init__(self, dims: int) -> None:
        self.entries: list[Entry] = []
        self.matrix = np.empty((8, dims), dtype=np.float32)
        self.where: dict[str, int] = {}

    def add(self, entry: Entry) -> bool:
        n = len(self.entries)
        if entry.vector.shape != (self.matrix.shape[1],):
            return False  # another size (the embedding deployment was reconfigured): not comparable
        if n == len(self.matrix):
            grown = np.empty((2 * n, self.matrix.shape[1]), dtype=np.float32)
            grown[:n] = self.matrix
            self.matrix = grown
        self.matrix[n] = entry.vector
        self.entries.append(entry)
        self.where[entry.id] = n
        return True

    def remove(self, entry: Entry) -> None:
        i, last = self.where.pop(entry.id), len(self.entries) - 1
        if i != last:
            moved = self.entries[last]
            self.entries[i] = moved
            self.matrix[i] = self.matrix[last]
            self.where[moved.id] = i
        self.entries.pop()

    def vectors(self) -> np.ndarray:
        return self.matrix[: len(self.entries)]


class LocalIndex:
    """Entries by scope, at most ``max_entries``, the oldest evicted first."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._order: OrderedDict[str, Entry] = OrderedDict()
        self._groups: dict[str, _Group] = {}

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, entry_id: str) -> bool:
        return entry_id in self._order

    def add(self, entry: Entry) -> None:
        if entry.id in self._order:
            return
        group = self._groups.get(entry.scope)
        if group is None:
            group = self._groups[entry.scope] = _Group(entry.vector.shape[0])
        if not group.add(entry):
            return
        self._order[entry.id] = entry
        while len(self._order) > self.max_entries:
            _, old = self._order.popitem(last=False)
            self._drop(old)

    def clear(self) -> None:
        self._order.clear()
        self._groups.clear()

    def search(self, scope: str, vector: np.ndarray, now: float, threshold: float) -> list[tuple[float, Entry]]:
        """Live entries of ``scope`` at least ``threshold`` similar to ``vector``, most similar first."""
        group = self._groups.get(scope)
        if group is None:
            return []
        sims = group.vectors() @ vector
        found: list[tuple[float, Entry]] = []
        expired: list[Entry] = []
        for i in np.flatnonzero(sims >= threshold):
            entry = group.entries[int(i)]
            if entry.expires <= now:
                expired.append(entry)
            else:
                found.append((float(sims[i]), entry))
        for entry in expired:
            self.remove(entry.id)
        found.sort(key=lambda f: -f[0])
        return found

    def remove(self, entry_id: str) -> None:
        entry = self._order.pop(entry_id, None)
        if entry is not None:
            self._drop(entry)

    def purge(self, now: float) -> None:
        """Drop expired entries."""
        for entry in [e for e in self._order.values() if e.expires <= now]:
            self.remove(entry.id)

    def _drop(self, entry: Entry) -> None:
        group = self._groups[entry.scope]
        group.remove(entry)
        if not group.entries:
            del self._groups[entry.scope]
