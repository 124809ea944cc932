import math

import pytest
import torch

from training.distill import losses


def _mask(gt, shapes, strides, anchors, psi=0.5, max_over="all"):
    gt = torch.tensor(gt, dtype=torch.float32)[None]
    valid = torch.ones(gt.shape[:2], dtype=torch.bool)
    anchors = [torch.tensor(a, dtype=torch.float32) for a in anchors]
    return [m[0].tolist() for m in losses.fgfi_mask(gt, valid, shapes, strides, anchors, psi, max_over)]


# Level A: stride 4, 4x4 grid (centres 2, 6, 10, 14), one anchor 12x4. GT [0, 0, 12, 4] equals the anchor at
# cell (0, 1) (IoU 1); the anchors at (0, 0) and (0, 2) overlap it by 8x4 -> IoU 32 / 64 = 0.5 exactly.
LEVEL_A = ((4, 4), 4.0, [[12.0, 4.0]])


def test_fgfi_mask_strict_greater_excludes_iou_equal_to_psi_max():
    (mask,) = _mask([[0, 0, 12, 4]], [LEVEL_A[0]], [LEVEL_A[1]], [LEVEL_A[2]], psi=0.5)
    assert mask[0] == [False, True, False, False]  # 0.5 is not > 0.5 * 1.0
    assert not any(any(r) for r in mask[1:])
    (loose,) = _mask([[0, 0, 12, 4]], [LEVEL_A[0]], [LEVEL_A[1]], [LEVEL_A[2]], psi=0.49)
    assert loose[0] == [True, True, True, False]  # (0, 3): IoU 16 / 80 = 0.2 < 0.49


def test_fgfi_mask_per_gt_max_over_all_levels_vs_per_level():
    # Level B: stride 8, 2x2 grid, anchor 8x8: IoU with the GT 0.4 at (0, 0), 1/6 at (0, 1), 0 below.
    shapes, strides, anchors = [LEVEL_A[0], (2, 2)], [LEVEL_A[1], 8.0], [LEVEL_A[2], [[8.0, 8.0]]]
    all_a, all_b = _mask([[0, 0, 12, 4]], shapes, strides, anchors, max_over="all")
    assert all_b == [[False, False], [False, False]]  # 0.4 < 0.5 * 1.0 (GT max on level A)
    assert all_a[0] == [False, True, False, False]
    lvl_a, lvl_b = _mask([[0, 0, 12, 4]], shapes, strides, anchors, max_over="level")
    assert lvl_b == [[True, False], [False, False]]  # 0.4 > 0.2; 1/6 < 0.2
    assert lvl_a == all_a


def test_fgfi_mask_or_over_gts_non_square_grid_and_padding():
    gt = torch.tensor([[[0, 0, 8, 8], [16, 8, 24, 16], [0, 0, 0, 0]]], dtype=torch.float32)
    valid = torch.tensor([[True, True, False]])
    (m,) = losses.fgfi_mask(gt, valid, [(2, 3)], [8.0], [torch.tensor([[8.0, 8.0]])])
    assert m.shape == (1, 2, 3)
    assert m[0].tolist() == [[True, False, False], [False, False, True]]


def test_fgfi_mask_no_gt_is_empty():
    gt = torch.zeros(2, 0, 4)
    (m,) = losses.fgfi_mask(gt, torch.zeros(2, 0, dtype=torch.bool), [(2, 2)], [8.0], [torch.tensor([[8.0, 8.0]])])
    assert m.shape == (2, 2, 2) and not m.any()


def test_fgfi_mask_rejects_bad_max_over():
    with pytest.raises(ValueError, match="max_over"):
        _mask([[0, 0, 4, 4]], [(1, 1)], [8.0], [[[8.0, 8.0]]], max_over="best")


def test_fgfi_loss_golden_normalised_by_masked_locations_not_channels():
    s = torch.zeros(1, 2, 2, 2)
    t = torch.zeros(1, 2, 2, 2)
    s[0, :, 0, 0] = torch.tensor([1.0, 2.0])  # squared diff sum at (0, 0): 1 + 4 = 5
    s[0, :, 1, 1] = 3.0  # unmasked: ignored
    mask = torch.zeros(1, 2, 2, dtype=torch.bool)
    mask[0, 0, 0] = mask[0, 0, 1] = True  # N_p = 2
    assert losses.fgfi_loss([s], [t], [mask]).item() == pytest.approx(5 / (2 * 2))
    # two levels share one N_p
    s2, t2, m2 = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, dtype=torch.bool)
    assert losses.fgfi_loss([s, s2], [t, t2], [mask, m2]).item() == pytest.approx((5 + 1) / (2 * 3))


def test_fgfi_loss_zero_when_equal_or_empty_mask():
    s = torch.randn(2, 3, 4, 5, requires_grad=True)
    full = torch.ones(2, 4, 5, dtype=torch.bool)
    assert losses.fgfi_loss([s], [s.detach().clone()], [full]).item() == 0.0
    empty = losses.fgfi_loss([s], [torch.randn(2, 3, 4, 5)], [~full])
    assert empty.item() == 0.0
    empty.backward()  # keeps a graph


def _adapters_and_feats(seed=0):
    """Two levels, non-square maps, student widths 5 and 3 to teacher widths 6 and 4, random features."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    adapters = [torch.nn.Sequential(torch.nn.Conv2d(5, 6, 3, padding=1), torch.nn.ReLU()),
                torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())]
    student = [torch.randn(2, 5, 6, 9, generator=g), torch.randn(2, 3, 3, 4, generator=g)]
    teacher = [torch.randn(2, 6, 6, 9, generator=g).relu(), torch.randn(2, 4, 3, 4, generator=g).relu()]
    return adapters, student, teacher


def _loss_and_grads(fn, adapters, student, teacher, masks):
    feats = [s.clone().requires_grad_(True) for s in student]
    for a in adapters:
        a.zero_grad(set_to_none=True)
    loss = fn(adapters, feats, teacher, masks)
    loss.backward()
    grads = [f.grad for f in feats] + [p.grad for a in adapters for p in a.parameters()]
    return loss.detach(), grads


def _dense(adapters, feats, teacher, masks):
    return losses.fgfi_loss([a(f) for a, f in zip(adapters, feats)], teacher, masks)


@pytest.mark.parametrize("dense_above", [1.0, 0.0])  # 1.0: every level sparse; 0.0: every masked level dense
def test_fgfi_adapted_loss_equals_dense_adapter_loss_in_value_and_gradients(dense_above):
    adapters, student, teacher = _adapters_and_feats()
    g = torch.Generator().manual_seed(1)
    m0 = torch.rand(2, 6, 9, generator=g) < 0.2
    m0[0, 0, 0] = m0[0, -1, -1] = m0[1, 0, -1] = m0[1, -1, 0] = m0[1, 2, 0] = m0[0, 0, 4] = True  # corners, edges
    m1 = torch.zeros(2, 3, 4, dtype=torch.bool)
    m1[1, :, -1] = True  # a border column of the second image only
    masks = [m0, m1]
    sparse = lambda *a: losses.fgfi_adapted_loss(*a, dense_above=dense_above)  # noqa: E731
    ref, ref_grads = _loss_and_grads(_dense, adapters, student, teacher, masks)
    got, got_grads = _loss_and_grads(sparse, adapters, student, teacher, masks)
    assert ref.item() > 0
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=0)
    for a, b in zip(got_grads, ref_grads):
        assert b.abs().sum() > 0  # every input and adapter parameter takes part
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_fgfi_adapted_loss_empty_masks_zero_with_graph_and_one_empty_level():
    adapters, student, teacher = _adapters_and_feats(seed=2)
    empty = [torch.zeros(2, 6, 9, dtype=torch.bool), torch.zeros(2, 3, 4, dtype=torch.bool)]
    got, grads = _loss_and_grads(losses.fgfi_adapted_loss, adapters, student, teacher, empty)
    assert got.item() == 0.0
    assert all(g is not None and g.abs().sum() == 0 for g in grads)  # a graph, zero gradients
    one = [empty[0], torch.ones(2, 3, 4, dtype=torch.bool)]  # N_p comes from the second level alone
    ref, ref_grads = _loss_and_grads(_dense, adapters, student, teacher, one)
    got, got_grads = _loss_and_grads(losses.fgfi_adapted_loss, adapters, student, teacher, one)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=0)
    for a, b in zip(got_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("kernel", "padding"), [((3, 3), (1, 1)), ((5, 3), (2, 1)), ((1, 1), (0, 0))])
def test_conv2d_at_equals_dense_conv_gathered_including_borders(kernel, padding):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 5, 6, generator=g)
    w, bias = torch.randn(7, 4, *kernel, generator=g), torch.randn(7, generator=g)
    mask = torch.zeros(2, 5, 6, dtype=torch.bool)
    mask[0, 0, :] = mask[1, :, 0] = mask[1, -1, -1] = mask[0, 2, 3] = True
    b, y, xx = mask.nonzero(as_tuple=True)
    ref = torch.nn.functional.conv2d(x, w, bias, padding=padding)[b, :, y, xx]
    torch.testing.assert_close(losses.conv2d_at(x, w, bias, (b, y, xx), padding), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="same-size"):
        losses.conv2d_at(x, w, bias, (b, y, xx), (padding[0] + 1, padding[1]))


def test_fgfi_adapted_loss_refuses_other_adapters():
    _, student, teacher = _adapters_and_feats()
    strided = [torch.nn.Sequential(torch.nn.Conv2d(5, 6, 3, stride=2, padding=1), torch.nn.ReLU()),
               torch.nn.Conv2d(3, 4, 3, padding=1)]
    masks = [torch.ones(2, 6, 9, dtype=torch.bool), torch.ones(2, 3, 4, dtype=torch.bool)]
    with pytest.raises(ValueError, match="fgfi adapter must be"):
        losses.fgfi_adapted_loss(strided, student, teacher, masks)


def _head(score_logit, dfl_logits, a=1, nc=1):
    scores = torch.full((1, nc, a), float(score_logit))
    boxes = torch.tensor(dfl_logits, dtype=torch.float32).repeat(4).view(1, 4 * len(dfl_logits), 1).repeat(1, 1, a)
    return scores, boxes


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


BIN_KL = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)  # KL((0.75, 0.25) || (0.5, 0.5)) = 0.1308121


def test_binary_kl_golden_and_zero_at_equality():
    s, t = torch.zeros(1, 1, 1), torch.full((1, 1, 1), math.log(3))  # 0.5 vs teacher 0.75
    assert losses.binary_kl(s, t).item() == pytest.approx(BIN_KL, rel=1e-5)
    x = torch.randn(2, 2, 9)
    assert losses.binary_kl(x, x.clone()).abs().max().item() < 1e-6


def test_cls_kd_loss_normalised_by_teacher_score_sum():
    s, t = torch.zeros(1, 1, 4), torch.full((1, 1, 4), math.log(3))  # 4 anchors, teacher 0.75 each: sum 3
    assert losses.cls_kd_loss(s, t).item() == pytest.approx(4 * BIN_KL / 3, rel=1e-5)
    assert losses.cls_kd_loss(s, t, normalizer=2.0).item() == pytest.approx(4 * BIN_KL / 2, rel=1e-5)
    one = torch.full((1, 1, 1), math.log(3))  # sum 0.75 is clamped to 1
    assert losses.cls_kd_loss(torch.zeros(1, 1, 1), one).item() == pytest.approx(BIN_KL, rel=1e-5)


def test_response_loss_golden():
    s_scores, s_boxes = _head(0.0, [0.0, 0.0])  # sigmoid 0.5; bins (0.5, 0.5)
    t_scores, t_boxes = _head(math.log(3), [math.log(3), 0.0])  # sigmoid 0.75; bins (0.75, 0.25)
    total, l_cls, l_reg = losses.response_loss(s_scores, t_scores, s_boxes, t_boxes, lam=0.5, temperature=1.0)
    assert l_cls.item() == pytest.approx(BIN_KL, rel=1e-5)  # BCE form, teacher score sum clamped to 1
    assert l_reg.item() == pytest.approx(_kl([0.75, 0.25], [0.5, 0.5]) / 2, rel=1e-5)  # mean over 2 bins
    assert total.item() == pytest.approx(0.5 * BIN_KL + 0.5 * BIN_KL / 2, rel=1e-5)
    # temperature 2: softmax(t / 2) = (sqrt3, 1) / (1 + sqrt3), times T^2 = 4
    r3 = math.sqrt(3)
    total2, _, l_reg2 = losses.response_loss(s_scores, t_scores, s_boxes, t_boxes, lam=0.3, temperature=2.0)
    assert l_reg2.item() == pytest.approx(4 * _kl([r3 / (1 + r3), 1 / (1 + r3)], [0.5, 0.5]) / 2, rel=1e-5)
    assert total2.item() == pytest.approx(0.3 * BIN_KL + 0.7 * l_reg2.item(), rel=1e-5)
    # the paper's L2 on probabilities stays available
    _, l2, _ = losses.response_loss(s_scores, t_scores, s_boxes, t_boxes, lam=0.5, cls_form="l2")
    assert l2.item() == pytest.approx(0.0625)
    with pytest.raises(ValueError, match="cls_form"):
        losses.response_loss(s_scores, t_scores, s_boxes, t_boxes, cls_form="l1")


def test_response_box_half_on_teacher_confident_or_assigned_locations():
    s = torch.zeros(1, 1, 2)
    t = torch.tensor([[[math.log(3), -10.0]]])
    s_boxes, t_boxes = torch.zeros(1, 8, 2), torch.zeros(1, 8, 2)
    t_boxes[0, 0::2, 1] = math.log(3)  # only location 1 differs in its bins
    w = losses.teacher_confidence(t, "hard", threshold=0.5)
    assert w.tolist() == [[1.0, 0.0]]
    _, _, l_reg = losses.response_loss(s, t, s_boxes, t_boxes, lam=0.0, weights=w)
    assert l_reg.item() == 0.0  # location 1 is not teacher-confident
    fg = torch.tensor([[False, True]])
    assigned = losses.teacher_confidence(t, "assigned", assigned=fg)
    assert assigned.tolist() == [[0.0, 1.0]]
    _, _, l_reg = losses.response_loss(s, t, s_boxes, t_boxes, lam=0.0, weights=assigned)
    assert l_reg.item() == pytest.approx(_kl([0.75, 0.25], [0.5, 0.5]) / 2, rel=1e-5)
    assert losses.teacher_confidence(t, "soft")[0, 0].item() == pytest.approx(0.75)
    assert losses.teacher_confidence(t, "none").tolist() == [[1.0, 1.0]]
    with pytest.raises(ValueError, match="foreground mask"):
        losses.teacher_confidence(t, "assigned")


def test_ld_loss_golden_mean_over_bins_and_weights():
    s_boxes = torch.zeros(1, 8, 2)
    t_boxes = torch.zeros(1, 8, 2)
    t_boxes[0, 0::2, 0] = 10 * math.log(3)  # at T=10 the teacher bins of location 0 are (0.75, 0.25)
    w = torch.tensor([[1.0, 0.0]])
    expected = 100 * _kl([0.75, 0.25], [0.5, 0.5]) / 2  # T^2 x KL, mean over the 2 bins
    assert losses.ld_loss(s_boxes, t_boxes, temperature=10.0, weights=w).item() == pytest.approx(expected, rel=1e-5)
    assert losses.ld_loss(s_boxes, t_boxes, temperature=10.0).item() == pytest.approx(expected / 2, rel=1e-5)


def test_bckd_cls_loss_golden_divided_by_positives():
    s = torch.zeros(1, 2, 1)
    t = torch.full((1, 2, 1), math.log(3))  # target 0.75, student 0.5: BCE = ln 2, modulation 0.25
    assert losses.bckd_cls_loss(s, t, beta=1.0).item() == pytest.approx(2 * math.log(2) * 0.25, rel=1e-6)
    assert losses.bckd_cls_loss(s, t, beta=2.0).item() == pytest.approx(2 * math.log(2) * 0.0625, rel=1e-6)
    four = losses.bckd_cls_loss(s, t, beta=1.0, num_pos=torch.tensor(4.0))
    assert four.item() == pytest.approx(2 * math.log(2) * 0.25 / 4, rel=1e-6)
    assert losses.bckd_cls_loss(s, t, num_pos=0).item() == pytest.approx(2 * math.log(2) * 0.25, rel=1e-6)


def test_bckd_box_loss_golden():
    s = torch.tensor([[[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]]])
    t = torch.tensor([[[1.0, 0.0, 3.0, 2.0], [0.0, 0.0, 1.0, 1.0]]])  # IoU 2 / 6; identical
    assert losses.bckd_box_loss(s, t, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(2 / 3, rel=1e-5)
    assert losses.bckd_box_loss(s, t).item() == pytest.approx(1 / 3, rel=1e-5)
    assert losses.bckd_box_loss(t, t.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_blend_predictions_endpoints_and_mix():
    s, t = torch.zeros(2, 3), torch.ones(2, 3)
    assert losses.blend_predictions(s, t, 0.0) is s  # stock assignment, bit for bit
    assert torch.equal(losses.blend_predictions(s, t, 1.0), t)
    assert torch.allclose(losses.blend_predictions(s, t, 0.25), torch.full((2, 3), 0.25))
    with pytest.raises(ValueError, match="blend"):
        losses.blend_predictions(s, t, 1.5)


def test_head_terms_zero_when_student_equals_teacher():
    scores, boxes = torch.randn(2, 2, 7), torch.randn(2, 64, 7)
    total, l_cls, l_reg = losses.response_loss(scores, scores.clone(), boxes, boxes.clone(), lam=0.5, temperature=3)
    assert total.abs().item() < 1e-5 and l_cls.abs().item() < 1e-5
    assert losses.ld_loss(boxes, boxes.clone()).abs().item() < 1e-5
    assert losses.bckd_cls_loss(scores, scores.clone()).item() == 0.0


def _grad_norm(loss_fn, logits):
    x = logits.clone().requires_grad_(True)
    loss_fn(x).backward()
    return x.grad.norm().item()


def _cold_student_confident_teacher(a=1000, nc=2, objects=10):
    """A student at ultralytics' class-bias init (sigmoid ~0.01) and a teacher sure of ``objects`` anchors."""
    student = torch.full((1, nc, a), -4.6)
    teacher = torch.full((1, nc, a), -6.0)
    teacher[0, 0, :objects] = 4.0
    # the detection class loss of a cold student: target scores of the still-random assignment near 0
    target = torch.zeros(1, nc, a)
    target[0, 0, :objects] = 0.01
    return student, teacher, target


def test_gradient_share_class_kd_same_order_as_detection_class_loss():
    student, teacher, target = _cold_student_confident_teacher()
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    det = _grad_norm(lambda x: bce(x, target).sum() / target.sum().clamp(min=1), student)  # ultralytics' cls loss
    kd = _grad_norm(lambda x: losses.cls_kd_loss(x, teacher), student)
    bckd = _grad_norm(lambda x: losses.bckd_cls_loss(x, teacher, num_pos=10), student)
    l2 = _grad_norm(lambda x: losses.response_loss(x, teacher, torch.zeros(1, 4, 1000), torch.zeros(1, 4, 1000),
                                                   lam=1.0, cls_form="l2")[0], student)
    assert 0.1 < kd / det < 10, (kd, det)
    assert 0.1 < bckd / det < 10, (bckd, det)
    assert l2 / det < 1e-3  # the L2 on probabilities is dead for a cold student: why it is not the default


def test_gradient_share_box_kd_same_order_as_dfl_loss():
    from ultralytics.utils.loss import DFLoss

    reg_max, n_pos = 16, 10
    student = torch.zeros(1, 4 * reg_max, n_pos)  # uniform bins: a cold student
    teacher = torch.zeros(1, 4 * reg_max, n_pos)
    teacher[0, 3::reg_max] = 8.0  # confident at bin 3 on every side
    target = torch.full((n_pos, 4), 3.0)
    dfl = DFLoss(reg_max)

    def det(x):  # ultralytics' DFL on the positives, weighted by target scores of 1, / target_scores_sum
        return dfl(x[0].permute(1, 0).reshape(-1, reg_max), target).sum() / n_pos

    d = _grad_norm(det, student)
    ld = _grad_norm(lambda x: losses.ld_loss(x, teacher, 10.0, torch.ones(1, n_pos)), student)
    resp = _grad_norm(lambda x: losses.response_loss(torch.zeros(1, 1, n_pos), torch.zeros(1, 1, n_pos), x, teacher,
                                                     lam=0.0, weights=torch.ones(1, n_pos))[0], student)
    assert 0.01 < ld / d < 10, (ld, d)
    assert 0.01 < resp / d < 10, (resp, d)


def test_response_rejects_bad_lambda_and_shapes():
    x = torch.zeros(1, 1, 1)
    with pytest.raises(ValueError, match="lam"):
        losses.response_loss(x, x, torch.zeros(1, 8, 1), torch.zeros(1, 8, 1), lam=1.5)
    with pytest.raises(ValueError, match="DFL shapes"):
        losses.dfl_kl(torch.zeros(1, 8, 1), torch.zeros(1, 16, 1))


@pytest.mark.parametrize(
    ("kind", "it", "expected"),
    [
        ("constant", 50, 1.0),
        ("linear", 0, 1.0),
        ("linear", 50, 0.55),
        ("linear", 100, 0.1),
        ("cosine", 0, 1.0),
        ("cosine", 50, 0.55),
        ("cosine", 100, 0.1),
        ("cosine", 25, 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2),
    ],
)
def test_schedule_factor_shapes(kind, it, expected):
    assert losses.schedule_factor(kind, 0, 10, it, 100, final=0.1) == pytest.approx(expected)


def test_schedule_factor_warmup_and_off_last_epochs():
    assert losses.schedule_factor("constant", 0, 10, 399, 1000, warmup_iters=400) == 0.0
    assert losses.schedule_factor("constant", 0, 10, 400, 1000, warmup_iters=400) == 1.0
    assert losses.schedule_factor("constant", 8, 10, 850, 1000, off_last_epochs=2) == 0.0
    assert losses.schedule_factor("constant", 7, 10, 799, 1000, off_last_epochs=2) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        losses.schedule_factor("step", 0, 1, 0, 1)
