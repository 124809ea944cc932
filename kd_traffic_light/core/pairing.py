"""Bounded cache that pairs student and teacher results of the same frame by exact key (ROS-free).

The key is `(stamp_ns, frame_id)`: the detectors copy the image header verbatim, so both results of one
frame carry the same stamp, and the frame_id keeps cameras sharing a stamp apart. Nothing unpaired is ever
compared.

* :class:`FramePairer` (the comparison node's): settles a result as soon as the other side is past its
  stamp, after a timeout, or drops it when its side's cache is full, and accounts for every message,
  including those lost before reaching the node (:class:`SideLedger`).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
SIDES = ("student", "teacher")
Key = tuple[int, str]


@dataclass(frozen=True)
class Pair(Generic[T]):
    """Both sides' items of one frame."""

    key: Key
    student: T
    teacher: T


def stamp_key(sec: int, nanosec: int, frame_id: str) -> Key:
    """Pairing key of a header's stamp and frame_id."""
    return (int(sec) * 1_000_000_000 + int(nanosec), frame_id)


DROP_REASONS = ("invalid", "duplicate", "cache_full", "late", "timed_out", "pending_at_close")


@dataclass
class SideLedger:
    """Where every message of one side went (counts since start).

    Every message the node took is in exactly one of `paired`, `unpaired`, `mate_lost`, `dropped[reason]`
    or still pending: ``received == accounted + pending``. Messages that never reached the node are
    measured from the publishers' sequence numbers: `lost_in_transport` (gaps between messages received
    from one publisher) and `unseen_before_first` (the sequence number of a publisher's first message
    received, minus one: published before this node matched it, or lost then).

    Attributes:
        received: Messages taken from the subscription.
        paired: Compared with the other side's message of the same frame.
        unpaired: The other side never sent this frame (it moved past the stamp, or nothing came within
            the timeout): a student-only / teacher-only frame.
        mate_lost: Unpaired, but the other side lost messages around this stamp (so its message of this
            frame may have been among them): not reported as one-side-only.
        dropped: Given up by the node, by reason: ``invalid`` (unreadable), ``duplicate`` (replaced by a
            later message of the same frame), ``cache_full`` (pushed out of the pending cache), ``late``
            (its mate had already been given up), ``timed_out`` (given up, then its mate came late: moved
            here from `unpaired`/`mate_lost`), ``pending_at_close``.
        lost_in_transport: Published but never received (sequence-number gaps).
        unseen_before_first: Published by a publisher before its first message received here.
    """

    received: int = 0
    paired: int = 0
    unpaired: int = 0
    mate_lost: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    lost_in_transport: int = 0
    unseen_before_first: int = 0

    @property
    def accounted(self) -> int:
        """Messages whose fate is decided (all received but the pending ones)."""
        return self.paired + self.unpaired + self.mate_lost + sum(self.dropped.values())

    @property
    def lost(self) -> int:
        """Messages this side lost: in transport or dropped by the node (pending at close not included)."""
        return self.lost_in_transport + sum(n for r, n in self.dropped.items() if r != "pending_at_close")

    def as_dict(self) -> dict[str, int]:
        """Flat counts (``dropped_<reason>``), for diagnostics and logs."""
        out = {"received": self.received, "paired": self.paired, "unpaired": self.unpaired,
               "mate_lost": self.mate_lost}
        out.update({f"dropped_{r}": n for r, n in self.dropped.items()})
        out.update(lost_in_transport=self.lost_in_transport, unseen_before_first=self.unseen_before_first)
        return out


@dataclass
class _Pending:
    item: Any
    arrival: float
    epoch: int


class FramePairer(Generic[T]):
    """Pairs the two sides' results of a frame by exact key and accounts for every message.

    Each side's results arrive in stamp order per frame_id (one publisher per side delivers in order and
    a detector publishes its frames in order). So once side B delivered a stamp later than a pending
    result of side A (same frame_id), B's result of A's frame will not come: A's result leaves as
    unpaired at once, whatever the rates and however far one side's queue lags the other's. A result also
    leaves unpaired when nothing paired it within `timeout_s` (B silent), and it is dropped when more
    than `capacity` of its side wait. A stamp that goes back (a bag loop) starts a new epoch of that
    side and frame_id; the other side's stamps decide only within the same epoch.

    Messages lost before reaching the node are measured from `source` = ``(publisher id, sequence
    number)``; a result left unpaired while the other side lost messages around its stamp counts as
    `mate_lost`, not as one-side-only.

    Args:
        capacity: Pending results kept per side (>= 1).
        timeout_s: Seconds (of the `now` given to :meth:`add` / :meth:`expire`) a result waits at most.
    """

    def __init__(self, capacity: int, timeout_s: float) -> None:
        if capacity < 1:
            raise ValueError(f"cache_size must be >= 1, got {capacity}")
        if timeout_s <= 0:
            raise ValueError(f"pair_timeout_s must be > 0, got {timeout_s}")
        self.capacity, self.timeout_s = capacity, timeout_s
        self.ledger = {s: SideLedger() for s in SIDES}
        self._pending: dict[str, OrderedDict[Key, _Pending]] = {s: OrderedDict() for s in SIDES}
        self._by_frame: dict[str, dict[str, OrderedDict[int, None]]] = {s: {} for s in SIDES}
        self._latest: dict[str, dict[str, int]] = {s: {} for s in SIDES}
        self._epoch: dict[str, dict[str, int]] = {s: {} for s in SIDES}
        self._given_up: dict[str, OrderedDict[Key, tuple[int, str]]] = {s: OrderedDict() for s in SIDES}
        self._losses: dict[str, deque] = {s: deque(maxlen=4096) for s in SIDES}
        self._seq: dict[str, dict[Any, tuple[int, int]]] = {s: {} for s in SIDES}

    # ------------------------------------------------------------------ input
    def add(self, side: str, key: Key, item: T, now: float, source: tuple[Any, int | None] | None = None
            ) -> Pair[T] | None:
        """Take one result of `side`; return the pair when the other side's result of `key` is waiting.

        Args:
            side: "student" or "teacher".
            key: `(stamp_ns, frame_id)`.
            item: Returned with the pair.
            now: Arrival time (seconds, any monotonic clock), for the timeout.
            source: `(publisher id, publication sequence number)` of the message, or None when unknown.
        """
        other = self._other(side)
        led = self.ledger[side]
        led.received += 1
        stamp, frame = key
        if source is not None and source[1] is not None:
            self._track_sequence(side, source[0], int(source[1]), stamp)
        latest = self._latest[side].get(frame)
        if latest is not None and stamp < latest:
            self._epoch[side][frame] = self._epoch[side].get(frame, 0) + 1
        self._latest[side][frame] = stamp
        epoch = self._epoch[side].get(frame, 0)
        pair = None
        if key in self._pending[other]:
            mate = self._take(other, key).item
            led.paired += 1
            self.ledger[other].paired += 1
            pair = Pair(key, item, mate) if side == "student" else Pair(key, mate, item)
        elif self._given_up[other].get(key, (None,))[0] == epoch:
            # the other side's result of this frame was given up before this one came: neither is one-sided
            bucket = self._given_up[other].pop(key)[1]
            led.dropped["late"] += 1
            if bucket != "cache_full":
                setattr(self.ledger[other], bucket, getattr(self.ledger[other], bucket) - 1)
                self.ledger[other].dropped["timed_out"] += 1
        elif epoch == self._epoch[other].get(frame, 0) and self._latest[other].get(frame, stamp) > stamp:
            self._give_up(side, key, epoch, self._settle(side, stamp))  # the other side is past it: unpaired now
        else:
            if key in self._pending[side]:
                self._take(side, key)
                led.dropped["duplicate"] += 1
            self._pending[side][key] = _Pending(item, now, epoch)
            self._by_frame[side].setdefault(frame, OrderedDict())[stamp] = None
            while len(self._pending[side]) > self.capacity:
                old_key, old = self._pending[side].popitem(last=False)
                self._by_frame[side][old_key[1]].pop(old_key[0], None)
                self._give_up(side, old_key, old.epoch, "cache_full")
                led.dropped["cache_full"] += 1
        self._passed(other, frame, stamp, epoch)
        return pair

    def drop(self, side: str, reason: str = "invalid") -> None:
        """Count one message of `side` the caller could not use (e.g. unreadable)."""
        self._other(side)
        self.ledger[side].received += 1
        self.ledger[side].dropped[reason] += 1

    def expire(self, now: float) -> int:
        """Settle the results that waited longer than the timeout as unpaired; return how many."""
        n = 0
        for side in SIDES:
            pending = self._pending[side]
            while pending:
                key, entry = next(iter(pending.items()))
                if now - entry.arrival < self.timeout_s:
                    break
                self._take(side, key)
                self._give_up(side, key, entry.epoch, self._settle(side, key[0]))
                n += 1
        return n

    def close(self) -> None:
        """End of the run: count every pending result as ``dropped_pending_at_close``."""
        for side in SIDES:
            self.ledger[side].dropped["pending_at_close"] += len(self._pending[side])
            self._pending[side].clear()
            self._by_frame[side].clear()

    def pending(self, side: str) -> int:
        """Return how many results of `side` wait for their mate."""
        return len(self._pending[side])

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _other(side: str) -> str:
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        return SIDES[1 - SIDES.index(side)]

    def _take(self, side: str, key: Key) -> _Pending:
        entry = self._pending[side].pop(key)
        self._by_frame[side][key[1]].pop(key[0], None)
        return entry

    def _give_up(self, side: str, key: Key, epoch: int, bucket: str) -> None:
        """Remember `key` of `side` as given up (`bucket`: how it was counted) for a mate arriving late."""
        given = self._given_up[side]
        given[key] = (epoch, bucket)
        while len(given) > 4 * self.capacity:
            given.popitem(last=False)

    def _settle(self, side: str, stamp: int) -> str:
        """Count one result of `side` at `stamp` that will not be paired (mate lost, or one side only); return which."""
        bucket = "mate_lost" if any(lo < stamp < hi for lo, hi in self._losses[self._other(side)]) else "unpaired"
        setattr(self.ledger[side], bucket, getattr(self.ledger[side], bucket) + 1)
        return bucket

    def _passed(self, side: str, frame: str, stamp: int, epoch: int) -> None:
        """Settle `side`'s pending results of `frame` before `stamp`, which the other side reached (same epoch)."""
        stamps = self._by_frame[side].get(frame)
        if not stamps:
            return
        for s in list(stamps):
            entry = self._pending[side][(s, frame)]
            if entry.epoch != epoch:
                continue
            if s >= stamp:
                break
            self._take(side, (s, frame))
            self._give_up(side, (s, frame), epoch, self._settle(side, s))

    def _track_sequence(self, side: str, publisher: Any, seq: int, stamp: int) -> None:
        led, seen = self.ledger[side], self._seq[side]
        last = seen.get(publisher)
        if last is None:
            if seq > 1:
                led.unseen_before_first += seq - 1
                self._losses[side].append((-math.inf, stamp))
        elif seq > last[0] + 1:
            led.lost_in_transport += seq - last[0] - 1
            self._losses[side].append((min(last[1], stamp), max(last[1], stamp)))
        seen[publisher] = (seq, stamp)
