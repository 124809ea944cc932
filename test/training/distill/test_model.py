import copy
import pickle

import numpy as np
import pytest
import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

from kd_traffic_light.core.types import CLASS_NAMES
from test.model_factory import make_untrained_pt
from training.distill.model import AssignmentSeam, KDDistillationModel, fit_anchors, make_adapter

TEACHER = "yolov5s.yaml"  # untrained teachers are yolov5s, students yolov5n
ALL_TERMS = {
    "fgfi": {"weight": 1.0, "warmup_epochs": 0.0, "max_over": "level"},  # every level masked
    "response": {},
    "ld": {"weighting": "none"},
    "bckd": {},
    "native": {},
    "lad": {"schedule": "constant"},
}


def _student(cfg="yolov5n.yaml", names=CLASS_NAMES):
    m = DetectionModel(cfg, nc=len(names), verbose=False)
    m.names = dict(names)
    m.args = get_cfg(overrides={"imgsz": 64, "close_mosaic": 0})
    return m


def _batch(b=2, size=64):
    torch.manual_seed(0)
    return {
        "img": torch.rand(b, 3, size, size),
        "batch_idx": torch.tensor([0.0, 1.0, 1.0]),
        "cls": torch.tensor([[0.0], [1.0], [0.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.3, 0.3, 0.1, 0.3], [0.7, 0.6, 0.2, 0.2]]),
    }


@pytest.fixture(scope="module")
def kd_model(tmp_path_factory):
    teacher = make_untrained_pt(tmp_path_factory.mktemp("t") / "t.pt", cfg=TEACHER)
    return KDDistillationModel(teacher, _student(), ALL_TERMS)


def test_widths_probed_and_adapters_initialised(kd_model):
    assert kd_model.student_channels == [64, 128, 256]  # yolov5n Detect inputs
    assert kd_model.teacher_channels == [128, 256, 512]  # yolov5s Detect inputs
    for adapter, s, t in zip(kd_model.adapters, kd_model.student_channels, kd_model.teacher_channels):
        conv = adapter[0]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.padding) == (s, t, (3, 3), (1, 1))
        assert isinstance(adapter[1], torch.nn.ReLU)
        assert conv.weight.std().item() > 1e-2  # PyTorch's conv init: the adapter passes signal from step 1
    assert kd_model.fgfi_anchors[0] == [[10.0, 13.0], [16.0, 30.0], [33.0, 23.0]]
    paper = make_adapter(64, 128, "paper")[0]
    assert paper.weight.std().item() == pytest.approx(1e-4, rel=0.05) and paper.bias.abs().sum() == 0
    with pytest.raises(ValueError, match="adapter_init"):
        make_adapter(4, 4, "xavier")


def test_teacher_frozen_eval_and_unchanged_by_a_training_step(kd_model):
    model = copy.deepcopy(kd_model).train()
    assert not model.teacher_model.training
    assert not any(p.requires_grad for p in model.teacher_model.parameters())
    before = {k: v.clone() for k, v in model.teacher_model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    seen = {}
    model.teacher_model.model[0].register_forward_hook(lambda m, i, o: seen.update(t=i[0]) and None)
    model.student_model.model[0].register_forward_hook(lambda m, i, o: seen.update(s=i[0]) and None)
    loss, items = model(_batch())
    loss.sum().backward()
    grads = [a[0].weight.grad for a in model.adapters]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # gradients reach the adapters
    assert model.projector[0][0].weight.grad is not None
    opt.step()
    after = model.teacher_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bit-identical (BN buffers included)
    assert torch.equal(seen["t"], seen["s"])  # teacher and student see the same batch
    assert set(items) == {"box_loss", "cls_loss", "dfl_loss", "fgfi_loss", "resp_loss", "ld_loss", "bckd_loss",
                          "dis_loss"}  # lad adds no column: it acts on the assignment
    assert loss.shape == (8,) and torch.isfinite(loss).all()
    assert all(items[k].item() > 0 for k in ("fgfi_loss", "resp_loss", "ld_loss", "dis_loss"))


def test_eval_mode_returns_same_columns_with_zero_kd(kd_model):
    model = copy.deepcopy(kd_model).eval()
    loss, items = model(_batch())
    assert loss.shape == (8,) and loss[3:].abs().sum() == 0
    assert items["fgfi_loss"].item() == 0 and "dis_loss" in items


def test_schedule_warmup_in_epochs_zeroes_term(tmp_path):
    teacher = make_untrained_pt(tmp_path / "t.pt", cfg=TEACHER)
    model = KDDistillationModel(teacher, _student(), {"fgfi": {"warmup_epochs": 0.5}, "response": {}}).train()
    with pytest.raises(AttributeError):
        model.kd_terms[0].values = ()  # the resolved settings are frozen
    model.kd_progress = {"epoch": 0, "epochs": 2, "iteration": 4, "total_iterations": 20, "batches": 10}
    _, items = model(_batch())
    assert items["fgfi_loss"].item() == 0.0 and items["resp_loss"].item() > 0  # 4 < 0.5 x 10 batches
    model.kd_progress = {"epoch": 0, "epochs": 2, "iteration": 5, "total_iterations": 20, "batches": 10}
    _, items = model(_batch())
    assert items["fgfi_loss"].item() > 0


def _stock_loss(model, batch):
    """The plain student's detection loss on the same batch (fresh criterion, stock assigner)."""
    student = copy.deepcopy(model.student_model)
    student.criterion = None
    return student.loss(batch)[1]


def test_lad_fully_on_student_is_stock_assignment(tmp_path):
    teacher = make_untrained_pt(tmp_path / "t.pt", cfg=TEACHER)
    model = KDDistillationModel(teacher, _student(), {"lad": {"weight": 0.0}, "response": {}}).train()
    batch = _batch()
    stock = _stock_loss(model, batch)
    _, items = model(batch)
    for k in ("box_loss", "cls_loss", "dfl_loss"):
        assert torch.equal(items[k], stock[k]), k


def test_lad_fully_on_teacher_follows_the_teacher_predictions():
    from ultralytics.utils.tal import TaskAlignedAssigner

    torch.manual_seed(1)
    b, a, nc = 2, 16, 2
    grid = torch.stack(torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="xy"), -1).view(-1, 2) * 8 + 4
    s_scores, t_scores = torch.rand(b, a, nc) * 0.1, torch.rand(b, a, nc)
    s_boxes = torch.cat((grid - 2, grid + 2), -1).expand(b, a, 4) + torch.rand(b, a, 4)
    t_boxes = torch.cat((grid - 6, grid + 6), -1).expand(b, a, 4) + torch.rand(b, a, 4)
    gt_labels = torch.tensor([[[0.0], [1.0]], [[1.0], [0.0]]])
    gt_boxes = torch.tensor([[[0.0, 0.0, 14.0, 14.0], [16.0, 16.0, 30.0, 30.0]],
                             [[4.0, 4.0, 20.0, 20.0], [18.0, 2.0, 30.0, 14.0]]])
    mask_gt = torch.ones(b, 2, 1)
    assigner = TaskAlignedAssigner(topk=4, num_classes=nc, alpha=0.5, beta=6.0)
    args = (grid, gt_labels, gt_boxes, mask_gt)
    on_teacher = AssignmentSeam(assigner, t_scores, t_boxes, alpha=1.0)(s_scores, s_boxes, *args)
    teacher_ref = assigner(t_scores, t_boxes, *args)
    student_ref = assigner(s_scores, s_boxes, *args)
    assert all(torch.equal(x, y) for x, y in zip(on_teacher, teacher_ref))
    assert not torch.equal(on_teacher[2], student_ref[2])  # target scores now come from the teacher
    seam = AssignmentSeam(assigner, t_scores, t_boxes, alpha=0.0)
    assert all(torch.equal(x, y) for x, y in zip(seam(s_scores, s_boxes, *args), student_ref))
    assert torch.equal(seam.fg_mask, student_ref[3])  # the positives are recorded for the KD terms


def test_non_finite_loss_stops_with_clear_error(kd_model):
    model = copy.deepcopy(kd_model).train()
    with torch.no_grad():
        model.adapters[0][0].bias.fill_(float("inf"))
    with pytest.raises(FloatingPointError, match="non-finite training loss.*fgfi_loss"):
        model(_batch())


def test_pickle_roundtrip_reregisters_hooks(kd_model):
    model = pickle.loads(pickle.dumps(copy.deepcopy(kd_model)))
    model.train()
    _, items = model(_batch())
    assert items["dis_loss"].item() > 0 and items["fgfi_loss"].item() > 0


def test_mismatched_names_nc_and_levels_refused(tmp_path):
    other = make_untrained_pt(tmp_path / "names.pt", cfg=TEACHER, names={0: "relevant", 1: "other"})
    with pytest.raises(ValueError, match=r"names\.pt: teacher classes .*'other'"):
        KDDistillationModel(other, _student(), {"native": {}})
    three = make_untrained_pt(tmp_path / "nc3.pt", cfg=TEACHER, names={0: "a", 1: "b", 2: "c"})
    with pytest.raises(ValueError, match="nc=3"):
        KDDistillationModel(three, _student(), {"native": {}})
    p6 = make_untrained_pt(tmp_path / "p6.pt", cfg="yolov5n-p6.yaml")
    with pytest.raises(ValueError, match="4 detection levels, student 3"):
        KDDistillationModel(p6, _student(), {"native": {}})
    with pytest.raises(FileNotFoundError, match="teacher checkpoint not found"):
        KDDistillationModel(tmp_path / "missing.pt", _student(), {"native": {}})
    with pytest.raises(ValueError, match="unknown key 'lamda'"):
        KDDistillationModel(other, _student(), {"response": {"lamda": 0.5}})


def test_fit_anchors_kmeans_sorted_per_level():
    rng = np.random.default_rng(0)
    wh = np.concatenate([rng.normal(c, 0.5, (40, 2)) for c in ([4, 10], [12, 30], [40, 90])])
    anchors = fit_anchors(wh, n_levels=3, per_level=1)
    areas = [a[0][0] * a[0][1] for a in anchors]
    assert areas == sorted(areas)
    assert anchors[0][0] == pytest.approx([4, 10], abs=1) and anchors[2][0] == pytest.approx([40, 90], abs=2)
    with pytest.raises(ValueError, match="at least 9"):
        fit_anchors(wh[:5])


# ------------------------------------------------------------------ YOLO26 (end-to-end head, reg_max 1) and YOLO11
YOLO26_TERMS = {"fgfi": {"weight": 1.0, "warmup_epochs": 0.0}, "response": {"lam": 1.0}, "bckd": {}, "native": {},
                "lad": {"schedule": "constant"}}


@pytest.mark.parametrize("reg_max", [16, 1])
def test_box_decoding_equals_ultralytics_for_dfl_and_direct_heads(reg_max):
    from ultralytics.utils.loss import v8DetectionLoss
    from ultralytics.utils.tal import make_anchors

    from training.distill.model import decode_boxes

    student = _student("yolov5n.yaml" if reg_max == 16 else "yolo26n.yaml")
    crit = v8DetectionLoss(student)
    feats = [torch.zeros(1, 8, s, s) for s in (8, 4, 2)]
    anchors, _ = make_anchors(feats, crit.stride, 0.5)
    torch.manual_seed(0)
    dist = torch.randn(2, 4 * reg_max, anchors.shape[0]) * 3
    ref = crit.bbox_decode(anchors, dist.permute(0, 2, 1).contiguous())
    assert torch.allclose(decode_boxes(dist, anchors, reg_max), ref, atol=1e-5)


def test_terms_that_compare_dfl_bins_are_refused_naming_the_term_and_why(tmp_path):
    from training.distill.model import dfl_refusal

    assert dfl_refusal({"ld": {}}, 16, 16) is None
    assert dfl_refusal({"bckd": {}, "fgfi": {}, "native": {}, "lad": {}, "response": {"lam": 1.0}}, 16, 1) is None
    assert "distill.terms.ld" in dfl_refusal({"ld": {}}, 16, 1) and "reg_max 1" in dfl_refusal({"ld": {}}, 16, 1)
    assert "lam: 1.0" in dfl_refusal({"response": {"lam": 0.5}}, 16, 1)
    assert "16 DFL bins and the student's 8" in dfl_refusal({"ld": {}}, 16, 8)
    teacher = make_untrained_pt(tmp_path / "t.pt", cfg=TEACHER)
    with pytest.raises(ValueError, match=r"t\.pt: distill\.terms\.ld: .*use 'bckd'"):
        KDDistillationModel(teacher, _student("yolo26n.yaml"), {"ld": {}})


@pytest.mark.parametrize(("teacher_cfg", "student_cfg"), [("yolo26s.yaml", "yolo26n.yaml"),
                                                          ("yolov5s.yaml", "yolo26n.yaml"),
                                                          ("yolo11s.yaml", "yolo11n.yaml")])
def test_a_training_step_for_yolo26_and_yolo11_students(tmp_path, teacher_cfg, student_cfg):
    teacher = make_untrained_pt(tmp_path / "t.pt", cfg=teacher_cfg)
    terms = YOLO26_TERMS if student_cfg.startswith("yolo26") else ALL_TERMS
    model = KDDistillationModel(teacher, _student(student_cfg), terms).train()
    loss, items = model(_batch())
    assert torch.isfinite(loss).all() and loss.requires_grad
    for column in ("fgfi_loss", "resp_loss", "bckd_loss", "dis_loss"):
        assert items[column].item() > 0, column
    crit = model.student_model.criterion
    branches = [crit.one2many, crit.one2one] if hasattr(crit, "one2one") else [crit]
    assert (len(branches) == 2) == student_cfg.startswith("yolo26")  # an end-to-end head has both branches
    assert not any(isinstance(b.assigner, AssignmentSeam) for b in branches)  # every assigner restored


@pytest.mark.parametrize("teacher_cfg", ["yolo26s.yaml", "yolov5s.yaml"])
def test_the_teacher_runs_its_one2many_head_alone_with_the_full_forwards_values(tmp_path, teacher_cfg):
    teacher = make_untrained_pt(tmp_path / "t.pt", cfg=teacher_cfg)
    model = KDDistillationModel(teacher, _student("yolo26n.yaml"), YOLO26_TERMS).train()
    img = _batch()["img"]
    feats, head = model._teacher_outputs(img)
    det = model.teacher_model.model[-1]
    assert "forward" not in vars(det)  # the head is itself again after the call
    with torch.inference_mode():
        _, full = model.teacher_model(img)  # eval mode: (decoded, raw dict) from the stock head
    full = full.get("one2many", full)
    for key in ("boxes", "scores"):
        assert torch.equal(head[key], full[key].float()), key
    assert [f.shape[1] for f in feats] == model.teacher_channels
