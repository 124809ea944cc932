import math

import pytest

from training.stats import paired_interval, t_critical_95


def test_paired_interval_golden():
    ours = {"0": 10.0, "1": 12.0, "2": 11.0}
    base = {"0": 8.0, "1": 9.0, "2": 9.5}  # differences 2, 3, 1.5: mean 2.1667, sd 0.7638
    d = paired_interval(ours, base)
    assert d["differences"] == [2.0, 3.0, 1.5]
    assert d["mean"] == pytest.approx(13 / 6)
    sd = math.sqrt(((2 - 13 / 6) ** 2 + (3 - 13 / 6) ** 2 + (1.5 - 13 / 6) ** 2) / 2)
    half = 4.303 * sd / math.sqrt(3)
    assert d["ci95"] == pytest.approx([13 / 6 - half, 13 / 6 + half])
    assert d["excludes_zero"] is True


def test_paired_interval_pairs_by_seed_and_can_include_zero():
    d = paired_interval({"0": 1.0, "1": -1.0, "7": 5.0}, {"0": 0.0, "1": 0.0, "2": 3.0})
    assert d["seeds"] == ["0", "1"] and d["mean"] == 0.0 and d["excludes_zero"] is False
    one = paired_interval({"0": 2.0}, {"0": 1.0})
    assert one["mean"] == 1.0 and one["ci95"] is None and one["excludes_zero"] is False
    assert paired_interval({}, {"0": 1.0})["mean"] is None


def test_t_critical_values():
    assert t_critical_95(1) == 12.706 and t_critical_95(2) == 4.303 and t_critical_95(30) == 2.042
    assert 1.96 < t_critical_95(100) < 2.0
    with pytest.raises(ValueError, match="at least 2"):
        t_critical_95(0)
