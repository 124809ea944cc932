"""``python -m benchmarks.node_bench [flags]``: the same as ``python benchmarks/node_latency.py [flags]``."""

from __future__ import annotations

import sys

from benchmarks.node_bench.driver import main

if __name__ == "__main__":
    sys.exit(main())
