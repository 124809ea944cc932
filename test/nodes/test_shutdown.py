"""Ctrl-C as a terminal plus ``ros2 launch`` deliver it: SIGINT twice; every node must exit 0, no traceback."""

import pytest

from test.nodes.soak import soak


@pytest.mark.parametrize("node", ["detector", "comparison"])
def test_sigint_twice_exits_zero_without_traceback(node, tmp_path):
    tally = soak(2, node=node, workdir=tmp_path, verbose=False)  # run 1 while frames flow, run 2 idle
    assert tally["clean"] == 2, dict(tally)


@pytest.mark.slow
def test_soak_start_stop_cycles_are_all_clean(tmp_path):
    tally = soak(6, node="detector", workdir=tmp_path, verbose=False)
    assert tally["clean"] == 6, dict(tally)
