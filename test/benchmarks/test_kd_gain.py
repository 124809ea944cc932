"""kd_gain's figures: arms chosen on val only, paired per seed, in the documented JSON form."""


from pathlib import Path

import pytest

from test.benchmarks import load_benchmark


def _kd_gain():
    return load_benchmark("kd_gain")


TEST = {
    "baseline": {"0": 10.0, "1": 12.0, "2": 11.0},
    "ours_a": {"0": 14.0, "1": 15.0, "2": 15.5},  # better on held-out, worse on val: must not be chosen
    "ours_b": {"0": 12.0, "1": 13.5, "2": 12.5},
    "native_dis6": {"0": 9.0, "1": 12.5, "2": 11.0},
    "native_dis1": {"0": 10.5, "1": 12.0, "2": 11.5},
}
VAL = {
    "baseline": {"0": 20.0, "1": 21.0, "2": 20.0},
    "ours_a": {"0": 20.0, "1": 21.0, "2": 20.0},
    "ours_b": {"0": 23.0, "1": 24.0, "2": 23.0},
    "native_dis6": {"0": 19.0, "1": 22.0, "2": 20.0},
    "native_dis1": {"0": 21.0, "1": 21.0, "2": 21.0},
}


def test_figures_choose_on_val_and_pair_seeds():
    fig = _kd_gain().figures(TEST, VAL, teacher=20.0)
    assert fig["chosen"] == {"ours": "ours_b", "native": "native_dis1"}
    m = fig["map50_95"]
    assert m["teacher"] == 20.0 and m["baseline"] == TEST["baseline"] and m["ours"] == TEST["ours_b"]
    assert m["native"] == TEST["native_dis1"]
    assert fig["D_ours"]["differences"] == [2.0, 1.5, 1.5] and fig["D_ours"]["excludes_zero"]
    assert fig["D_native"]["mean"] == pytest.approx(1 / 3)
    assert fig["kd_gap"] == pytest.approx((5 / 3) / 9)
    assert fig["goals"] == {"D_ours_ci_excludes_zero": True, "D_ours_vs_native": True, "kd_gap_ge_0.4": False}
    assert set(fig["D_arms"]) == {"ours_a", "ours_b", "native_dis6", "native_dis1"}


def test_figures_need_a_baseline_and_ours_and_take_native_as_optional():
    kd = _kd_gain()
    with pytest.raises(ValueError, match="baseline"):
        kd.figures({"ours_b": TEST["ours_b"]}, VAL, 20.0)
    with pytest.raises(ValueError, match="ours"):
        kd.figures({k: v for k, v in TEST.items() if not k.startswith("ours")},
                   {k: v for k, v in VAL.items() if not k.startswith("ours")}, 20.0)
    # an arm set without native_* (the integrated method): D_ours and kd-gap, no native figure and no native goal
    fig = kd.figures({k: v for k, v in TEST.items() if not k.startswith("native")},
                     {k: v for k, v in VAL.items() if not k.startswith("native")}, 20.0)
    assert fig["chosen"]["native"] is None and fig["D_native"] is None and fig["map50_95"]["native"] is None
    assert fig["goals"]["D_ours_vs_native"] is None
    assert fig["D_ours"] == kd.figures(TEST, VAL, 20.0)["D_ours"]


def test_quick_profile_is_a_valid_experiment_with_paired_seeds():
    import argparse

    from training.experiment import plan_runs, resolve_experiment

    kd = _kd_gain()
    raw = kd.profile_experiment(argparse.Namespace(profile="quick", config=None, seeds=None, device=None))
    exp = resolve_experiment(raw, str(kd.QUICK_CONFIG))
    assert len(exp.seeds) >= 3 and exp.evaluate.split == "test"
    assert any(m.startswith("ours") for m in exp.methods) and any(m.startswith("native") for m in exp.methods)
    runs = plan_runs(exp)
    students = [r for r in runs if r.role == "student"]
    by_method = {}
    for r in students:
        by_method.setdefault(r.method, set()).add(r.seed)
    assert all(seeds == set(exp.seeds) for seeds in by_method.values())  # every arm on the same seeds
    assert [r.role for r in runs].index("student") > 0  # the teacher trains first, once


def test_screening_trains_candidates_on_the_first_seed_then_the_chosen_on_all():
    import argparse

    from training.experiment import resolve_experiment

    kd = _kd_gain()
    raw = kd.profile_experiment(argparse.Namespace(profile="quick", config=None, seeds=None, device=None))
    exp = resolve_experiment(raw, str(kd.QUICK_CONFIG))
    screen, rest = kd.screening_plan(exp)
    first, others = exp.seeds[0], exp.seeds[1:]
    assert any(n.startswith("teacher_") for n in screen)
    assert {n for n in screen if "_baseline_" in n} == {f"n_baseline_seed{s}" for s in exp.seeds}
    for method in exp.methods:
        if method == "baseline":
            assert method not in rest
            continue
        assert f"n_from_s_{method}_seed{first}" in screen
        assert rest[method] == {f"n_from_s_{method}_seed{s}" for s in others}


def test_the_arm_chosen_at_screening_stays_chosen():
    # seeds 1 and 2 of the chosen arm may lower its val mean below a candidate screened on seed 0 alone: the
    # choice made at screening (same seed for every candidate) must not flip afterwards
    test = {**TEST, "ours_c": {"0": 30.0}}
    val = {**VAL, "ours_c": {"0": 23.5}}
    fig = _kd_gain().figures(test, val, 20.0, chosen={"ours": "ours_b", "native": "native_dis1"})
    assert fig["chosen"]["ours"] == "ours_b" and fig["map50_95"]["ours"] == TEST["ours_b"]


def test_finalists_are_the_best_of_each_family_on_val():
    kd = _kd_gain()
    val = {"baseline": {"0": 20.0}, "ours_a": {"0": 21.0}, "ours_b": {"0": 25.0}, "ours_c": {"0": 23.0},
           "native_x": {"0": 22.0}, "native_y": {"0": 19.0}}
    assert kd.finalists(val, 2) == ["ours_b", "ours_c", "native_x", "native_y"]
    assert kd.finalists(val, 1) == ["ours_b", "native_x"]
    # the final choice among finalists is the val mean over every seed, not the first seed's value
    val_all = {"ours_b": {"0": 25.0, "1": 20.0, "2": 21.0}, "ours_c": {"0": 23.0, "1": 23.0, "2": 24.0}}
    assert kd.choose(val_all, "ours") == "ours_c"


def _quick_raw(kd, spread=True):
    import argparse

    raw = kd.profile_experiment(argparse.Namespace(profile="quick", config=None, seeds=None, device=None))
    if spread:
        raw["methods"] = {**raw["methods"], **kd.spread_methods()}
    return raw


def test_protocol_has_five_paired_seeds_and_a_second_scene_set_with_the_chosen_arms_only(tmp_path):
    from training.experiment import plan_runs, resolve_experiment

    kd = _kd_gain()
    raw = _quick_raw(kd, spread=False)
    exp = resolve_experiment(raw, str(kd.QUICK_CONFIG))
    assert len(exp.seeds) >= 5
    chosen = {"ours": next(m for m in raw["methods"] if m.startswith("ours")),
              "native": next(m for m in raw["methods"] if m.startswith("native"))}
    raw2 = kd.second_experiment(raw, tmp_path / "kd_gain_quick", 7, chosen)
    exp2 = resolve_experiment(raw2, "second")
    assert exp2.data.seed == 7 and exp.data.seed != 7
    assert list(exp2.methods) == ["baseline", chosen["ours"], chosen["native"]]
    assert exp2.methods[chosen["ours"]] == exp.methods[chosen["ours"]]  # the same recipe, unchanged
    assert {k: v for k, v in raw2["data"].items() if k != "seed"} == {k: v for k, v in raw["data"].items()
                                                                     if k != "seed"}
    assert exp2.seeds == exp.seeds and Path(raw2["out"]) == tmp_path / "kd_gain_quick_second"
    assert len([r for r in plan_runs(exp2) if r.role == "teacher"]) == 1  # its own teacher, on its own scenes
    assert raw["data"]["seed"] == exp.data.seed  # the tuning set's config is left as it was
    other = next(m for m in raw["methods"] if m.startswith("ours") and m != chosen["ours"])
    with_also = kd.second_experiment(raw, tmp_path / "kd_gain_quick", 7, chosen, [other, chosen["ours"]])
    assert list(with_also["methods"]) == ["baseline", chosen["ours"], chosen["native"], other]  # once each
    no_native = kd.second_experiment(raw, tmp_path / "kd_gain_quick", 7, {"ours": chosen["ours"], "native": None})
    assert list(no_native["methods"]) == ["baseline", chosen["ours"]]


def test_spread_study_varies_the_order_and_the_initialisation_apart():
    from training.experiment import plan_runs, resolve_experiment

    kd = _kd_gain()
    exp = resolve_experiment(_quick_raw(kd), str(kd.QUICK_CONFIG))
    names = kd.spread_runs(exp)
    assert names == {"n_spread_init100_seed0", "n_spread_init100_seed1", "n_spread_init100_seed2",
                     "n_spread_init101_seed0", "n_spread_init102_seed0"}
    runs = {r.name: r for r in plan_runs(exp)}
    assert all(not runs[n].kd for n in names)  # baselines: the same recipe as 'baseline' but for init.seed
    assert runs["n_spread_init101_seed0"].config["init"]["seed"] == 101
    assert {k: v for k, v in runs["n_spread_init101_seed0"].config.items() if k != "init"} == dict(
        runs["n_baseline_seed0"].config)
    test = {"baseline": {"0": 10.0, "1": 12.0, "2": 14.0},
            "spread_init100": {"0": 10.0, "1": 11.0, "2": 12.0},
            "spread_init101": {"0": 13.0}, "spread_init102": {"0": 16.0}}
    fig = kd.spread_figures(test, {"sd": 1.5})
    assert fig["baseline_sd"] == {"order_only": pytest.approx(1.0), "init_only": pytest.approx(3.0),
                                  "both": pytest.approx(2.0)}
    assert fig["paired_sd_ours"] == 1.5


def test_costs_of_the_arms_and_of_a_reference_student(tmp_path):
    kd = _kd_gain()
    cost = {"gflops": 0.3, "head_gflops": 0.01, "params_m": 1.8, "head_params_m": 0.03}
    rows = [{"role": "teacher", "method": "teacher", **{k: 4 * v for k, v in cost.items()}},
            {"role": "student", "method": "baseline", **cost},
            {"role": "student", "method": "baseline", **{k: 9.0 for k in cost}},  # the first run of a method counts
            {"role": "student", "method": "ours_x", "gflops": None}]  # a run without its cost adds nothing
    assert kd.arm_costs(rows) == {"teacher": {k: 4 * v for k, v in cost.items()}, "baseline": cost}
    (tmp_path / "data.yaml").write_text("names: {0: a, 1: b}\n")
    coupled = Path(__file__).resolve().parents[2] / "training" / "configs" / "models" / "yolov5n-coupled.yaml"
    ref = kd.reference_costs(["yolov5n.yaml", str(coupled)],
                             tmp_path / "data.yaml", 64)
    assert set(ref) == {"yolov5n", "yolov5n-coupled"}
    # the coupled head is one 1x1 conv per level: a fraction of the decoupled head's parameters and FLOPs
    assert ref["yolov5n-coupled"]["head_params_m"] < 0.2 * ref["yolov5n"]["head_params_m"]
    assert ref["yolov5n-coupled"]["head_gflops"] < ref["yolov5n"]["head_gflops"]
    assert kd.reference_costs([], tmp_path / "data.yaml", 64) == {}
