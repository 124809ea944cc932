"""The node benchmark behind ``benchmarks/node_latency.py`` (node-overhead, node-throughput, node-bounded, ...).

One job per module: :mod:`.driver` (flags, JSON), :mod:`.session` (one run), :mod:`.nodes` (node processes),
:mod:`.bench` (frames out, answers in), :mod:`.blocks` (a repetition's blocks), :mod:`.figures` (the ratios),
:mod:`.report` (the printed table), :mod:`.frames`, :mod:`.models`; the child programs :mod:`.relay` (the
transport floor) and :mod:`.core_worker` (the student's predict time). Imports nothing heavy: the children
run in the runtime venv. What is measured and why: docs/benchmarks.md, "Node figures".
"""
