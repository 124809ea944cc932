"""Training seeds of the suite, shifted by ``KD_TEST_SEED_SHIFT`` (default 0) to force other trajectories.

A seed reproduces a training run on one machine only; another CPU follows another trajectory. Running the suite
with ``KD_TEST_SEED_SHIFT=1`` (or 2, ...) gives every real training run in it a different seed, so a test that
only passed on the trajectory one machine took fails here too. Torch-free (the runtime-only venv imports it).
"""

from __future__ import annotations

import os

ENV = "KD_TEST_SEED_SHIFT"


def _shift() -> int:
    raw = os.environ.get(ENV, "0").strip() or "0"
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{ENV}={raw!r}: expected a non-negative integer (the amount added to every training "
                         "seed of the suite)") from None
    if value < 0:
        raise SystemExit(f"{ENV}={value}: expected a non-negative integer")
    return value


SHIFT = _shift()


def seed(base: int = 0) -> int:
    """The training seed a test uses where it would use ``base``."""
    return base + SHIFT
