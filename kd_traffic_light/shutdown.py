"""Signals of the node processes: the first SIGINT/SIGTERM asks for a clean stop, later ones are ignored.

A terminal's Ctrl-C and ``ros2 launch`` together send a node SIGINT twice; the second must not land in the
clean-up. A clean-up still running ``grace_s`` seconds after the first signal (default 4 s) is stuck: every
thread's stack goes to stderr and the process exits with 1. In a node's ``main()``::

    guard = SignalGuard("detector_node").install(); init_rclpy(args)  # rclpy without its signal handlers
    ...; spin_until_requested(executor, guard)

How it works and why (the wake-up fd, the C-level watchdog): docs/runtime.md, "Stopping a node".
"""

from __future__ import annotations

import faulthandler
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Sequence

SIGNALS = {signal.SIGINT, signal.SIGTERM}
GRACE_S = 4.0


class SignalGuard:
    """Turns SIGINT/SIGTERM into one stop request (docs/runtime.md, "Stopping a node").

    Args:
        name: Process name for the messages on stderr.
        grace_s: Seconds after the first signal before a stuck clean-up is reported and the process exits.
    """

    def __init__(self, name: str, grace_s: float = GRACE_S) -> None:
        self.name = name
        self.grace_s = grace_s
        self.requested = threading.Event()
        self.signal: int | None = None
        self._wake: list[Callable[[], None]] = []

    def install(self) -> SignalGuard:
        """Take over SIGINT and SIGTERM (call it in the main thread, first thing in ``main()``)."""
        faulthandler.enable()
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        for sig in SIGNALS:
            signal.signal(sig, _ignore)  # no KeyboardInterrupt anywhere; the wake-up fd carries the signal
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._wait, args=(read_fd,), name="signals", daemon=True).start()
        return self

    def ignore_further(self) -> None:
        """Ignore SIGINT/SIGTERM from now on (main thread, when the clean-up starts).

        The interpreter restores the default action of Python-handled signals while it finalizes, and a
        late second Ctrl-C would then kill the exiting process (exit -2); an ignored signal stays ignored.
        """
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def on_request(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` (from the signal thread) when the stop is requested."""
        self._wake.append(wake)

    def _next_signal(self, fd: int, timeout: float | None) -> int | None:
        while True:
            if timeout is not None:
                ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
                if not ready:
                    return None
            data = os.read(fd, 1)
            if data and data[0] in SIGNALS:
                return data[0]

    def _wait(self, fd: int) -> None:
        self.signal = self._next_signal(fd, None)
        # armed first, so that nothing below (or a clean-up holding the GIL) can keep the process alive
        faulthandler.dump_traceback_later(self.grace_s, exit=True)
        print(f"[{self.name}] {signal.Signals(self.signal).name}: shutting down", file=sys.stderr, flush=True)
        self.requested.set()
        for wake in self._wake:
            try:
                wake()
            except Exception as exc:  # noqa: BLE001 - waking is best effort; the main loop polls too
                print(f"[{self.name}] wake-up after signal failed: {exc!r}", file=sys.stderr)
        while True:
            self._next_signal(fd, None)  # a second Ctrl-C, launch's forwarded SIGINT: ignored


def _ignore(signum, frame) -> None:
    """Python-level handler of SIGINT/SIGTERM: nothing (the signal thread acts on them)."""


def init_rclpy(args: Sequence[str] | None):
    """``rclpy.init`` without rclpy's signal handlers (a :class:`SignalGuard` handles the signals).

    Malformed ``--ros-args`` (e.g. ``-p x:=['a', 1]``, a list of mixed types) make rcl refuse to initialise;
    that is reported as one line naming the rule and the process exits with status 1, no traceback.
    """
    import rclpy
    from rclpy.impl.implementation_singleton import rclpy_implementation
    from rclpy.signals import SignalHandlerOptions

    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except rclpy_implementation.RCLError as exc:
        reason = str(exc).split(", at ")[0].removeprefix("failed to initialize rcl: ")
        print(f"[FATAL] invalid ROS arguments: {reason}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def spin_until_requested(executor, guard: SignalGuard, period_s: float = 0.1) -> None:
    """Spin ``executor`` until a stop is requested or its context shuts down."""
    while not guard.requested.is_set() and executor.context.ok():
        executor.spin_once(timeout_sec=period_s)
