"""The ledger's local spool for ``ledger.durability: strict``: a row is on disk before its answer is released.

Each process claims a *slot* in the spool directory (``slot-N.lock``, held with an exclusive ``flock`` for the
life of the process, so replicas on one host never share one) and appends its rows, one JSON line each, to the
slot's current *segment* (``slot-N.SEQ.jsonl``).

* **Group commit.** Appends wait together: while one ``write`` + ``fsync`` runs (in a worker thread, off the
  event loop), newer rows queue up, and the next round writes all of them with one ``fsync``. An append returns
  once its rows' ``fsync`` returned, so concurrent requests share the cost of one.
* **Sealing.** Before each ledger flush the current segment is sealed and a new one started; every row of a sealed
  segment was already in the ledger's buffer (rows enter the buffer before they are spooled), so once that flush
  committed everything, the sealed segments are deleted. A failed flush keeps them.
* **Replay.** At start-up, the process replays every segment of every slot whose lock is free — its own
  predecessor's, a replica killed with ``kill -9`` — into the store, skipping rows already there (``(request_id,
  attempt)`` is unique), and deletes them. A torn last line (a write the kill interrupted, never acknowledged) is
  skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from llm_manager.costs.rows import LedgerRow, row_from_json, row_json

__all__ = ["Spool", "default_spool_dir", "read_segment"]

log = logging.getLogger("llm_manager.costs")

_MAX_SLOTS = 1024
_SEGMENT = re.compile(r"^slot-(\d+)\.(\d+)\.jsonl$")


def default_spool_dir(store_url: str | None) -> Path:
    """Where a store's spool lives unless ``ledger.spool_dir`` says otherwise: the user's data directory, one
    subdirectory per store (processes writing to different stores never replay each other's rows)."""
    import hashlib

    import platformdirs

    tag = hashlib.sha256((store_url or "default").encode()).hexdigest()[:16]
    return Path(platformdirs.user_data_dir("llm-manager")) / "ledger-spool" / tag


def read_segment(path: Path) -> list[LedgerRow]:
    """The rows of one segment; a line that does not parse (the torn end of a killed write) is skipped."""
    rows: list[LedgerRow] = []
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                log.warning("ledger spool %s: line %d was cut short by a crash (never acknowledged)", path, number)
                continue
            try:
                rows.append(row_from_json(line))
            except (ValueError, TypeError, KeyError) as exc:
                log.error("ledger spool %s: line %d is not a ledger row, skipped: %s", path, number, exc)
    return rows


class Spool:
    """One process's slot in a spool directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.slot: int | None = None
        self.fsyncs = 0
        """Group commits so far (each one ``fsync``, shared by every row it wrote)."""
        self.rows = 0
        """Rows appended so far."""
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._seq = 0
        self._sealed: list[Path] = []
        self._queue: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._io = asyncio.Lock()
        """Held while a segment is written to or switched: a seal never cuts a write in two."""

    # -- slots --------------------------------------------------------------------------------------------------

    def claim(self) -> None:
        """Take the first free slot (``OSError`` when the directory cannot be used)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for n in range(_MAX_SLOTS):
            fd = _try_lock(self.directory / f"slot-{n}.lock")
            if fd is not None:
                self.slot, self._lock_fd = n, fd
                self._seq = max((seq for _, seq in self._segments(n)), default=0) + 1
                self._open_segment()
                return
        raise OSError(f"no free ledger spool slot in {self.directory} ({_MAX_SLOTS} processes hold one)")

    def _segments(self, slot: int) -> list[tuple[Path, int]]:
        found = []
        for path in self.directory.iterdir():
            m = _SEGMENT.match(path.name)
            if m and int(m.group(1)) == slot:
                found.append((path, int(m.group(2))))
        return sorted(found, key=lambda p: p[1])

    def orphans(self) -> list[tuple[int | None, list[Path]]]:
        """Segments left by processes that are gone: this slot's older ones, and every slot whose lock is free
        (its lock is taken, so two starting processes never replay one slot; release with :meth:`release`)."""
        slots = sorted({int(m.group(1)) for p in self.directory.iterdir() if (m := _SEGMENT.match(p.name))})
        out: list[tuple[int | None, list[Path]]] = []
        for n in slots:
            if n == self.slot:
                mine = [p for p, seq in self._segments(n) if seq < self._seq]
                if mine:
                    out.append((None, mine))
                continue
            fd = _try_lock(self.directory / f"slot-{n}.lock")
            if fd is None:
                continue  # a live process owns it
            out.append((fd, [p for p, _ in self._segments(n)]))
        return out

    @staticmethod
    def release(lock_fd: int | None) -> None:
        if lock_fd is not None:
            os.close(lock_fd)

    # -- appending ----------------------------------------------------------------------------------------------

    def _open_segment(self) -> None:
        path = self.directory / f"slot-{self.slot}.{self._seq}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(self.directory)  # the new name itself survives a crash

    async def append(self, rows: Sequence[LedgerRow]) -> None:
        """Return once ``rows`` are on disk (``fsync``), sharing the ``fsync`` with concurrent appends."""
        if not rows:
            return
        self._queue.append(b"".join(row_json(r) + b"\n" for r in rows))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(done)
        self.rows += len(rows)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="llm-manager-ledger-spool")
        await asyncio.shield(done)

    async def _write(self) -> None:
        while self._queue:
            data, waiters = b"".join(self._queue), self._waiters
            self._queue, self._waiters = [], []
            try:
                async with self._io:
                    fd = self._fd
                    assert fd is not None, "the spool has no slot"
                    await asyncio.to_thread(_write_and_sync, fd, data)
                self.fsyncs += 1
            except BaseException as exc:
                for w in waiters:
                    if not w.done():
                        w.set_exception(exc if isinstance(exc, Exception) else OSError("spool write cancelled"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    # -- sealing and closing ------------------------------------------------------------------------------------

    async def seal(self) -> None:
        """Start a new segment; the current one joins those to delete after the next complete flush."""
        async with self._io:
            if self._fd is None:
                return
            os.close(self._fd)
            self._sealed.append(self.directory / f"slot-{self.slot}.{self._seq}.jsonl")
            self._seq += 1
            self._open_segment()

    def committed(self) -> None:
        """Every row of the sealed segments is in the store: delete them."""
        for path in self._sealed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._sealed.clear()

    async def aclose(self, *, committed: bool) -> None:
        """Stop appending; with ``committed`` (the final flush wrote everything) the slot's segments go too."""
        if self._writer is not None:
            await asyncio.wait([self._writer])
        async with self._io:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if committed and self.slot is not None:
            for path, _ in self._segments(self.slot):
                path.unlink()
        self.release(self._lock_fd)
        self._lock_fd = None


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_and_sync(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
