"""ROS-free runtime pieces of the detector node: the latest-frame slot and the node statistics.

The slot keeps at most one pending frame per input (camera): a frame that arrives while the worker is
busy replaces the pending one and is counted as dropped. So the executor never blocks and latency does
not grow with the input rate.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Hashable
from typing import Any


class LatestSlot:
    """Thread-safe latest-item slot per key, served round-robin to one consumer."""

    def __init__(self) -> None:
        self._items: dict[Hashable, Any] = {}
        self._order: deque[Hashable] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, key: Hashable, item: Any) -> bool:
        """Store ``item`` for ``key``; returns True when it replaced a pending (now dropped) item."""
        with self._cond:
            replaced = key in self._items
            self._items[key] = item
            if not replaced:
                self._order.append(key)
            self._cond.notify()
            return replaced

    def get(self, timeout: float | None = None) -> tuple[Hashable, Any] | None:
        """Take the oldest-keyed pending item; ``None`` on timeout or when closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._order or self._closed, timeout=timeout):
                return None
            if self._closed:
                return None
            key = self._order.popleft()
            return key, self._items.pop(key)

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
