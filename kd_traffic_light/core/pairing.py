"""Bounded cache that pairs student and teacher results of the same frame by exact key (ROS-free).

The key is `(stamp_ns, frame_id)`: the detectors copy the image header verbatim, so both results of one
frame carry the same stamp, and the frame_id keeps cameras sharing a stamp apart. A result waits in its
side's cache until the other side's result with the same key arrives (then both leave as a pair) or until
`capacity` newer results of its side pushed it out: it is then counted as unmatched for that side
(e.g. a frame the teacher skipped). Nothing unmatched is ever compared.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
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


class StampPairer(Generic[T]):
    """Pairs items of two sides by key with at most `capacity` pending items per side.

    Args:
        capacity: Pending items kept per side before the oldest is evicted as unmatched.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"cache_size must be >= 1, got {capacity}")
        self.capacity = capacity
        self._pending: dict[str, OrderedDict[Key, Any]] = {s: OrderedDict() for s in SIDES}
        self.paired = 0
        self.unmatched = dict.fromkeys(SIDES, 0)
        self.duplicates = dict.fromkeys(SIDES, 0)

    def add(self, side: str, key: Key, item: T) -> Pair[T] | None:
        """Add one side's item; return the pair when the other side already has this key.

        Args:
            side: "student" or "teacher".
            key: `(stamp_ns, frame_id)` of the frame.
            item: Whatever the caller needs back with the pair.

        Returns:
            The completed pair, or None while the other side's item is missing.
        """
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        other = SIDES[1 - SIDES.index(side)]
        if key in self._pending[other]:
            mate = self._pending[other].pop(key)
            self.paired += 1
            return Pair(key, item, mate) if side == "student" else Pair(key, mate, item)
        mine = self._pending[side]
        if key in mine:
            self.duplicates[side] += 1  # a repeated frame replaces the earlier result
            del mine[key]
        mine[key] = item
        while len(mine) > self.capacity:
            mine.popitem(last=False)
            self.unmatched[side] += 1
        return None

    def pending(self, side: str) -> int:
        """Return how many items of `side` wait for their mate."""
        return len(self._pending[side])

    def flush(self) -> None:
        """Count every pending item as unmatched and empty the cache (end of a run)."""
        for side in SIDES:
            self.unmatched[side] += len(self._pending[side])
            self._pending[side].clear()


def stamp_key(sec: int, nanosec: int, frame_id: str) -> Key:
    """Pairing key of a header's stamp and frame_id."""
    return (int(sec) * 1_000_000_000 + int(nanosec), frame_id)
