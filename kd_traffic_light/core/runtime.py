"""ROS-free runtime pieces of the detector node: the latest-frame slot and the node statistics.

The slot keeps at most one pending frame per input (camera): a frame that arrives while the worker is
busy replaces the pending one and is counted as dropped. So the executor never blocks and latency does
not grow with the input rate; ``fresh_wait`` also bounds how long a taken frame has waited (see
:class:`LatestSlot`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from typing import Any


class LatestSlot:
    """Thread-safe latest-item slot per key, served round-robin to one consumer.

    ``fresh_wait`` (a fraction of the key's input period, 0 disables) bounds the age of what the consumer gets
    above capacity. Without it, the item the consumer takes when it becomes free has waited anywhere between 0
    and one input period, so an answer is up to one period older than its service time. With it, an item that
    has waited longer than ``fresh_wait`` x period, when no other key is pending and the key's next item is due
    within the rest of the period, is superseded by that next item: the consumer waits (at most until the next
    item is due, plus a tenth of a period) and takes the newer one. The oldest answers lose up to
    ``(1 - fresh_wait)`` of a period; the cost is idle time, on average ``(1 - fresh_wait)^2 / 2`` periods per
    item taken above capacity (0.011 periods at 0.85, the node default). Below capacity items are taken as they
    come and nothing waits. The period is the median of the key's last ``PERIOD_WINDOW`` arrival intervals.
    """

    PERIOD_WINDOW = 9
    SLACK = 0.1  # of a period: how long past the due time the consumer still waits for the next item

    def __init__(self, fresh_wait: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0.0 <= fresh_wait < 1.0:
            raise ValueError(f"fresh_wait: expected a fraction of the input period in [0, 1), got {fresh_wait}")
        self.fresh_wait = fresh_wait
        self.superseded = 0  # items replaced while the consumer waited for a fresher one
        self._clock = clock
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._order: deque[Hashable] = deque()
        self._last: dict[Hashable, float] = {}
        self._intervals: dict[Hashable, deque[float]] = {}
        self._cond = threading.Condition()
        self._closed = False

    def put(self, key: Hashable, item: Any) -> bool:
        """Store ``item`` for ``key``; returns True when it replaced a pending (now dropped) item."""
        with self._cond:
            now = self._clock()
            if key in self._last:
                self._intervals.setdefault(key, deque(maxlen=self.PERIOD_WINDOW)).append(now - self._last[key])
            self._last[key] = now
            replaced = key in self._items
            self._items[key] = (now, item)
            if not replaced:
                self._order.append(key)
            self._cond.notify()
            return replaced

    def period(self, key: Hashable) -> float | None:
        """Median interval between the key's last arrivals (seconds); ``None`` before three arrivals."""
        with self._cond:
            return self._period(key)

    def _period(self, key: Hashable) -> float | None:
        """:meth:`period` with the lock held."""
        iv = sorted(self._intervals.get(key, ()))
        return iv[len(iv) // 2] if len(iv) >= 2 else None

    def get(self, timeout: float | None = None) -> tuple[Hashable, Any] | None:
        """Take the oldest-keyed pending item (or, with ``fresh_wait``, its successor); ``None`` on timeout or close."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._order or self._closed, timeout=timeout):
                return None
            if self._closed:
                return None
            key = self._order.popleft()
            arrived, item = self._items.pop(key)
            if self.fresh_wait > 0 and not self._order:
                item = self._fresher(key, arrived, item)
            return key, item

    def _fresher(self, key: Hashable, arrived: float, item: Any) -> Any:
        """With the lock held: wait for the key's next item when ``item`` is stale and the next is due soon."""
        period = self._period(key)
        if period is None:
            return item
        now = self._clock()
        deadline = arrived + period * (1.0 + self.SLACK)
        if now - arrived <= self.fresh_wait * period or now >= deadline:
            return item
        came = self._cond.wait_for(lambda: key in self._items or self._closed, timeout=deadline - now)
        if not came or self._closed:  # no newer item in time, or the slot closed: serve the one taken
            return item
        self._order.remove(key)
        self.superseded += 1
        return self._items.pop(key)[1]

    def clear(self) -> int:
        """Drop every pending item; returns how many were dropped."""
        with self._cond:
            n = len(self._items)
            self._items.clear()
            self._order.clear()
            return n

    def close(self) -> None:
        """Wake the consumer and make every later :meth:`get` return ``None``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class NodeStats:
    """Counters and rolling timings for the detector node's diagnostics (thread-safe)."""

    def __init__(self, window: int = 100) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()
        self._arrivals: deque[float] = deque(maxlen=window)
        self._proc_ms: deque[float] = deque(maxlen=window)
        self._age_ms: deque[float] = deque(maxlen=window)

    def received(self) -> None:
        """Count one arriving frame (for the input rate)."""
        with self._lock:
            self.counts["received"] += 1
            self._arrivals.append(time.monotonic())

    def count(self, name: str) -> None:
        """Increment counter ``name`` (e.g. processed, dropped_busy, stale, paused, errors)."""
        with self._lock:
            self.counts[name] += 1

    def reject(self, reason: str) -> None:
        """Count a rejected (malformed) input under its reason."""
        with self._lock:
            self.counts["rejected"] += 1
            self.rejects[reason] += 1

    def processed(self, processing_ms: float, stamp_age_ms: float) -> None:
        """Record one processed frame's processing time and stamp age at publication."""
        with self._lock:
            self.counts["processed"] += 1
            self._proc_ms.append(processing_ms)
            self._age_ms.append(stamp_age_ms)

    def summary(self) -> dict[str, float | int]:
        """Snapshot: counters, input rate (Hz), mean/max processing time and stamp age (ms)."""
        with self._lock:
            arr = list(self._arrivals)
            rate = (len(arr) - 1) / (arr[-1] - arr[0]) if len(arr) >= 2 and arr[-1] > arr[0] else 0.0
            out: dict[str, float | int] = {
                "input_rate_hz": rate,
                "processing_ms_mean": _mean(self._proc_ms),
                "processing_ms_max": max(self._proc_ms, default=0.0),
                "stamp_age_ms_mean": _mean(self._age_ms),
                "stamp_age_ms_max": max(self._age_ms, default=0.0),
            }
            for key in ("received", "processed", "dropped_busy", "stale", "rejected", "paused", "errors"):
                out[key] = self.counts[key]
            for reason, n in sorted(self.rejects.items()):
                out[f"rejected_{reason}"] = n
            return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
