import csv
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from test.model_factory import write_tiny_config
from test.seeds import seed
from test.training.distill.conftest import REPO
from training.distill.config import load_config, resolve_config
from training.distill.trainer import (
    DistillTrainer,
    KDSettings,
    ddp_worker_state,
    find_settings,
    rebuild_ddp_worker,
)

TINY = REPO / "training" / "configs" / "tiny_cpu.yaml"


def _config(tmp_path, terms, name="cfg"):
    return write_tiny_config(tmp_path / f"{name}.yaml", terms)


def _overrides(cfg, data, teacher, project, name, **extra):
    over = cfg.overrides()
    over.update(model="yolov5n.yaml", data=str(data), project=str(project), name=name, exist_ok=True, **extra)
    if teacher is not None:
        over["distill_model"] = str(teacher)
    return over


def test_registry_declares_each_term_once():
    from training.distill.config import TERM_COLUMNS, TERM_DEFAULTS
    from training.distill.terms import TERMS, docs_table

    assert list(TERM_DEFAULTS) == list(TERMS) == list(TERM_COLUMNS)
    assert TERM_COLUMNS["lad"] is None and TERMS["lad"].compute is None  # acts on the assignment, adds no loss
    doc = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    assert docs_table().strip() in doc  # the docs' term table is the registry's (python -m training.distill.terms)


def test_all_shipped_configs_resolve():
    # the experiment configs (demo_cpu, dtld_source_study) in the same folder have their own schema
    for stem in ("default", "fgfi", "response", "native", "combined", "tiny_cpu"):
        path = REPO / "training" / "configs" / f"{stem}.yaml"
        cfg = load_config(path)
        assert cfg.train["optimizer"] == "SGD" or path.stem == "tiny_cpu"
    default = load_config(REPO / "training" / "configs" / "default.yaml")
    recipe = {"epochs": 30, "lr0": 0.01, "lrf": 0.1, "optimizer": "SGD", "imgsz": 640}
    assert all(default.train[k] == v for k, v in recipe.items())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"trian": {}}, "unknown key 'trian'"),
        ({"train": {"epoch": 3}}, "train: unknown key 'epoch'"),
        ({"distill": {"terms": {"fgfy": {}}}}, "distill.terms: unknown key 'fgfy'"),
        ({"distill": {"terms": {"fgfi": {"psi": "half"}}}}, "fgfi.psi: expected float"),
        ({"distill": {"terms": {"fgfi": {"max_over": "best"}}}}, "max_over"),
        ({"distill": {"terms": {"response": {"lam": 2}}}}, "lam"),
        ({"augment": {"blur": 0.1}}, "augment: unknown key 'blur'"),
        ({"distill": {"terms": {"response": {"cls_form": "l1"}}}}, "response.cls_form: expected one of bce, l2"),
        ({"distill": {"terms": {"ld": {"weighting": "all"}}}}, "ld.weighting: expected one of none, soft"),
        ({"distill": {"terms": {"lad": {"weight": 2.0}}}}, "teacher's share"),
        ({"distill": {"terms": {"fgfi": {"warmup_epochs": -1}}}}, "fgfi.warmup_epochs: expected a value >= 0"),
        ({"distill": {"terms": {"fgfi": {"adapter_init": "xavier"}}}}, "adapter_init"),
    ],
)
def test_strict_config_errors_name_key_and_file(tmp_path, raw, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="bad.yaml") as exc:
        load_config(path)
    assert message in str(exc.value)


def test_kd_settings_reach_ddp_worker(tmp_path, tiny_data, teacher_pt):
    """The worker is rebuilt from (class, args, model, callbacks) only: the settings ride in the callbacks."""
    cfg = resolve_config({"train": {"imgsz": 64, "epochs": 1}, "distill": {"terms": {"fgfi": {"psi": 0.3}}}})
    parent = DistillTrainer(overrides=_overrides(cfg, tiny_data, teacher_pt, tmp_path, "ddp"), kd_config=cfg)
    path = tmp_path / "ddp_state.pt"
    state = ddp_worker_state(parent)
    try:
        import cloudpickle as pickle_module  # what ultralytics uses for its DDP state file
    except ImportError:  # not installed here: drop ultralytics' own lambdas that only cloudpickle can pickle
        pickle_module = pickle

        def picklable(fn):
            try:
                pickle.dumps(fn)
                return True
            except (pickle.PicklingError, AttributeError, TypeError):
                return False

        state["callbacks"] = {k: [f for f in v if picklable(f)] for k, v in state["callbacks"].items()}
    torch.save(state, path, pickle_module=pickle_module)
    state = torch.load(path, weights_only=False)
    worker = rebuild_ddp_worker(state)
    assert type(worker) is DistillTrainer
    assert worker.kd_config == parent.kd_config
    assert worker.kd_config.terms["fgfi"]["psi"] == 0.3
    assert worker.args.distill_model == str(teacher_pt)
    assert isinstance(find_settings(worker.callbacks), KDSettings)
    assert sum(isinstance(f, KDSettings) for fs in worker.callbacks.values() for f in fs) == 1


def test_terms_without_teacher_refused(tmp_path, tiny_data):
    cfg = load_config(TINY)
    with pytest.raises(ValueError, match="no teacher"):
        DistillTrainer(overrides=_overrides(cfg, tiny_data, None, tmp_path, "x"), kd_config=cfg)


def test_augmentation_survives_close_mosaic_once(tmp_path, tiny_data):
    # regression: the trainer re-added BlurClahe after ultralytics' close_mosaic rebuild, which the dataset
    # wrapper had already done, and training stopped at the first close_mosaic epoch
    from types import SimpleNamespace

    from training.data.augment import BlurClahe

    cfg = resolve_config({"train": {"imgsz": 64, "epochs": 2, "close_mosaic": 1, "mosaic": 1.0, "workers": 0},
                          "augment": {"blur_p": 0.5, "clahe_p": 0.5}})
    trainer = DistillTrainer(overrides=_overrides(cfg, tiny_data, None, tmp_path, "aug"), kd_config=cfg)
    from ultralytics.nn.tasks import DetectionModel

    trainer.model = DetectionModel("yolov5n.yaml", nc=2, verbose=False)  # build_dataset reads its stride
    train_dir = Path(tiny_data).parent / "images" / "train"
    dataset = trainer.build_dataset(str(train_dir), mode="train", batch=4)
    trainer.train_loader = SimpleNamespace(dataset=dataset)
    for _ in range(2):  # ultralytics may close mosaic again on resume
        trainer._close_dataloader_mosaic()
        steps = dataset.transforms.transforms
        assert sum(isinstance(t, BlurClahe) for t in steps) == 1, steps
        assert not any(type(t).__name__ == "Mosaic" for t in steps)
    assert isinstance(dataset[0]["img"], torch.Tensor)


def _rows(run_dir):
    with open(run_dir / "results.csv") as f:
        return list(csv.DictReader(f))


COUPLED_N = REPO / "training" / "configs" / "models" / "yolov5n-coupled.yaml"
METHODS = {
    "fgfi": ({"fgfi": {"weight": 1.0, "warmup_epochs": 0.0, "anchors": "kmeans", "anchors_per_level": 1}},
             ["fgfi_loss"]),
    "response": ({"response": {"weighting": "soft"}}, ["resp_loss"]),
    "native": ({"native": {}}, ["dis_loss"]),
    "combined": ({"ld": {}, "bckd": {}, "response": {"schedule": "cosine"}}, ["ld_loss", "bckd_loss", "resp_loss"]),
    "lad": ({"lad": {}, "response": {}}, ["resp_loss"]),
}


@pytest.fixture(scope="module")
def method_runs(tmp_path_factory, tiny_data, teacher_pt):
    """One 1-epoch run per method through the CLI entry point (64 px, 8 images)."""
    from training.cli import main

    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for name, (terms, _) in METHODS.items():
        cfg = _config(root, terms, name)
        # the integrated (response) method as published: decoupled-head teacher -> coupled-head student
        student = str(COUPLED_N) if name == "response" else "yolov5n.yaml"
        argv = ["distill", "--teacher", str(teacher_pt), "--student", student, "--data", str(tiny_data),
                "--config", str(cfg), "--project", str(root), "--name", name, "--device", "cpu"]
        assert main(argv) == 0
        runs[name] = root / name
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_one_epoch_run_per_method(method_runs, method):
    run = method_runs[method]
    rows = _rows(run)
    for col in METHODS[method][1]:
        assert f"train/{col}" in rows[0] and f"val/{col}" in rows[0]
        assert float(rows[0][f"train/{col}"]) >= 0
    for path in ("weights/best.pt", "weights/last.pt", "provenance.json", "args.yaml"):
        assert (run / path).is_file(), path
    ckpt = torch.load(run / "weights" / "best.pt", weights_only=False)
    assert type(ckpt["model"]).__name__ == "DetectionModel"  # student only: no teacher, no adapters
    assert not any(k.startswith(("teacher_model", "adapters", "projector")) for k in ckpt["model"].state_dict())
    prov = yaml.safe_load((run / "provenance.json").read_text())
    assert set(prov["config"]["distill"]["terms"]) == set(METHODS[method][0])
    assert prov["versions"]["ultralytics"] == "8.4.190"


@pytest.mark.slow
def test_kmeans_anchors_fitted_and_recorded(method_runs):
    prov = yaml.safe_load((method_runs["fgfi"] / "provenance.json").read_text())
    anchors = prov["fgfi_anchors"]
    assert isinstance(anchors, list) and len(anchors) == 3 and all(len(lv) == 1 for lv in anchors)
    assert prov["config"]["distill"]["terms"]["fgfi"]["anchors"] == "kmeans"  # the config is not rewritten


@pytest.mark.slow
def test_best_pt_reloads_in_fresh_process(method_runs, tiny_data):
    image = next((Path(tiny_data).parent / "images" / "val").glob("*.png"))
    code = textwrap.dedent(
        """
        import sys
        from ultralytics import YOLO
        for path in sys.argv[2:]:
            model = YOLO(path)
            assert model.names == {0: "relevant", 1: "not_relevant"}, model.names
            model.predict(sys.argv[1], imgsz=64, device="cpu", verbose=False)
        print("OK", len(sys.argv) - 2)
        """
    )
    paths = [str(r / "weights" / "best.pt") for r in method_runs.values()]
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-c", code, str(image), *paths], capture_output=True, text=True,
                         timeout=300, env=env, cwd=str(Path(tiny_data).parent))
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"OK {len(paths)}" in out.stdout


KILL_SCRIPT = """
import os, sys
from training.distill.config import load_config
from training.distill.trainer import DistillTrainer
cfg = load_config(sys.argv[1])
over = cfg.overrides()
over.update(model="yolov5n.yaml", data=sys.argv[2], distill_model=sys.argv[3], project=sys.argv[4], name="kill",
            exist_ok=True, epochs=2)
trainer = DistillTrainer(overrides=over, kd_config=cfg)
trainer.add_callback("on_model_save", lambda t: os._exit(17))  # killed right after epoch 1 is saved
trainer.train()
"""


@pytest.mark.slow
def test_kill_and_resume_keeps_kd_setup(tmp_path, tiny_data, teacher_pt):
    cfg_path = _config(tmp_path, {"fgfi": {"weight": 1.0, "warmup_epochs": 0.0, "psi": 0.4}, "native": {},
                                  "lad": {"final": 0.2}}, "resume")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(cfg_path), str(tiny_data), str(teacher_pt),
                          str(tmp_path)], capture_output=True, text=True, timeout=300, env=env, cwd=str(REPO))
    assert out.returncode == 17, out.stderr[-3000:]
    last = tmp_path / "kill" / "weights" / "last.pt"
    saved = torch.load(last, weights_only=False)
    assert type(saved["ema"]).__name__ == "KDDistillationModel" and saved["ema"].teacher_model is None
    assert saved["epoch"] == 0
    saved_adapter = saved["ema"].adapters[0][0].weight.float().clone()

    from training.distill.model import KDDistillationModel

    trainer = DistillTrainer(overrides={"resume": str(last)})  # no config given: it comes from the checkpoint
    assert trainer.kd_config.terms["fgfi"]["psi"] == 0.4
    assert trainer.kd_config.terms["lad"]["final"] == 0.2
    captured = {}

    def grab(t):
        model = t.model
        captured["model"] = type(model).__name__
        captured["adapter"] = model.adapters[0][0].weight.detach().float().clone()
        captured["in_opt"] = {id(p) for g in t.optimizer.param_groups for p in g["params"]}
        captured["adapter_ids"] = {id(p) for p in model.adapters.parameters()}
        captured["teacher"] = {k: v.clone() for k, v in model.teacher_model.state_dict().items()}

    trainer.add_callback("on_pretrain_routine_end", grab)
    trainer.train()
    assert captured["model"] == "KDDistillationModel"
    assert [t.name for t in trainer.model.kd_terms] == ["fgfi", "native", "lad"]  # every term back, lad included
    assert trainer.model.term("lad")["final"] == 0.2
    assert torch.allclose(captured["adapter"], saved_adapter, atol=1e-3)  # adapters restored (fp16 in last.pt)
    assert captured["adapter_ids"] <= captured["in_opt"]  # adapters are trained
    assert isinstance(trainer.model, KDDistillationModel)
    after = trainer.model.teacher_model.state_dict()
    assert all(torch.equal(captured["teacher"][k], after[k]) for k in after)  # teacher untouched by training
    rows = _rows(tmp_path / "kill")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["train/fgfi_loss"]) >= 0 and "train/dis_loss" in rows[1]
    assert float(rows[1]["train/dis_loss"]) > 0
    final = torch.load(tmp_path / "kill" / "weights" / "best.pt", weights_only=False)
    assert type(final["model"]).__name__ == "DetectionModel"


@pytest.mark.slow
def test_train_subcommand_teacher_baseline(tmp_path, tiny_data):
    from training.cli import main

    cfg = _config(tmp_path, {}, "plain")
    argv = ["train", "--model", "yolov5n.yaml", "--data", str(tiny_data), "--config", str(cfg),
            "--project", str(tmp_path), "--name", "teacher", "--device", "cpu", "--seed", str(seed(1))]
    assert main(argv) == 0
    rows = _rows(tmp_path / "teacher")
    assert not any(k.endswith(("fgfi_loss", "dis_loss")) for k in rows[0])
    prov = yaml.safe_load((tmp_path / "teacher" / "provenance.json").read_text())
    assert prov["teacher"] is None and prov["train_args"]["seed"] == seed(1)
    assert prov["train_args"]["optimizer"] == "SGD"
    code = main(["train", "--model", "yolov5n.yaml", "--data", str(tiny_data), "--config", str(TINY)])
    assert code == 2  # "distill.terms is set; use `distill --teacher T.pt`", reported by training.cli


def _initial_weights(tmp_path, data, order_seed, init_seed):
    raw = {"train": {"imgsz": 64, "epochs": 1, "workers": 0}}
    if init_seed is not None:
        raw["init"] = {"seed": init_seed}
    cfg = resolve_config(raw)
    name = f"init{init_seed}_order{order_seed}"
    trainer = DistillTrainer(overrides=_overrides(cfg, data, None, tmp_path, name, seed=order_seed), kd_config=cfg)
    model = trainer.get_model(cfg="yolov5n.yaml", verbose=False)
    return torch.cat([p.detach().flatten() for p in model.parameters()]), torch.initial_seed()


def test_init_seed_decides_the_initial_weights_and_leaves_the_order_seed(tmp_path, tiny_data):
    # kd-gain's spread study varies the initialisation and the data order apart: init.seed alone must decide the
    # student's weights, and the run's --seed must still reach the generator that orders the data
    a, order_a = _initial_weights(tmp_path, tiny_data, order_seed=1, init_seed=7)
    b, order_b = _initial_weights(tmp_path, tiny_data, order_seed=2, init_seed=7)
    c, _ = _initial_weights(tmp_path, tiny_data, order_seed=1, init_seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert order_a != order_b  # ultralytics seeds the dataloader's generator from torch.initial_seed()
    plain_1, _ = _initial_weights(tmp_path, tiny_data, order_seed=1, init_seed=None)
    plain_2, _ = _initial_weights(tmp_path, tiny_data, order_seed=2, init_seed=None)
    assert not torch.equal(plain_1, plain_2)  # without it, the run's seed draws the weights, as in ultralytics


def test_init_seed_is_checked_and_kept_in_the_plain_form():
    from training.errors import UsageError

    assert resolve_config({"init": {"seed": 3}}).to_dict()["init"] == {"seed": 3}
    assert "init" not in resolve_config({}).to_dict()  # configs written before it existed read the same
    for bad, msg in (({"seed": -1}, "init.seed: expected an int >= 0"), ({"seed": True}, "init.seed"),
                     ({"sed": 1}, "init: unknown key 'sed'")):
        with pytest.raises(UsageError, match=msg):
            resolve_config({"init": bad}, "x.yaml")


def test_repeat_counts_follow_the_lvis_rule():
    from training.data.sampling import repeat_counts

    # 11 images: class 0 in ten, class 1 in one (twice), class 2 in four, the last without labels
    images = [[0, 1, 1]] + [[0]] * 5 + [[0, 2]] * 4 + [[]]
    # thr 0.4: class 1 -> sqrt(0.4 / (1/11)) = 2.10 -> 2; class 2 -> sqrt(0.4 / (4/11)) = 1.05 -> 1; class 0 -> 1
    assert repeat_counts(images, 0.4) == [2] + [1] * 9 + [1]
    assert repeat_counts(images, 0.0) == [1] * 11
    with pytest.raises(ValueError, match=r"repeat_thr 1.5: expected a fraction of images in \[0, 1\)"):
        repeat_counts(images, 1.5)


def test_repeat_thr_repeats_the_rare_images_of_the_train_dataset(tmp_path, tiny_data):
    from ultralytics.nn.tasks import DetectionModel

    train_dir = Path(tiny_data).parent / "images" / "train"
    sizes = {}
    for thr in (0.0, 0.9):
        cfg = resolve_config({"train": {"imgsz": 64, "epochs": 1, "workers": 0},
                              "sampling": {"repeat_thr": thr}})
        trainer = DistillTrainer(overrides=_overrides(cfg, tiny_data, None, tmp_path, f"rep{thr}"), kd_config=cfg)
        trainer.model = DetectionModel("yolov5n.yaml", nc=2, verbose=False)
        dataset = trainer.build_dataset(str(train_dir), mode="train", batch=4)
        sizes[thr] = (dataset.ni, len(dataset.im_files), len(dataset.labels), len(set(dataset.im_files)))
        assert dataset[dataset.ni - 1]["img"].shape[0] == 3  # every listed index loads
    plain, repeated = sizes[0.0], sizes[0.9]
    assert plain[0] == plain[1] == plain[2] == plain[3]
    assert repeated[0] == repeated[1] == repeated[2] > plain[0] and repeated[3] == plain[3]


def test_sampling_is_checked_and_kept_in_the_plain_form():
    from training.errors import UsageError

    assert resolve_config({"sampling": {"repeat_thr": 0.1}}).to_dict()["sampling"] == {"repeat_thr": 0.1}
    assert "sampling" not in resolve_config({}).to_dict()  # configs written before it existed read the same
    for bad, msg in (({"repeat_thr": 1.0}, r"sampling.repeat_thr: expected a fraction of images in \[0, 1\)"),
                     ({"repeat_thr": "a"}, "sampling.repeat_thr"), ({"thr": 0.1}, "sampling: unknown key 'thr'")):
        with pytest.raises(UsageError, match=msg):
            resolve_config({"sampling": bad}, "x.yaml")
