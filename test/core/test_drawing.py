"""core/drawing.py: detections drawn on a copy of a BGR frame, solid or dashed, coloured by class, labelled."""

import numpy as np
import pytest

from kd_traffic_light.core.drawing import CLASS_COLORS, class_color, draw_detections
from kd_traffic_light.core.types import Detection

RED = (0, 0, 255)


def frame(h: int = 100, w: int = 200) -> np.ndarray:
    return np.zeros((h, w, 3), np.uint8)


def painted(img: np.ndarray) -> np.ndarray:
    """Mask of the pixels that are not black."""
    return img.any(axis=2)


def test_solid_box_lands_on_its_edges_and_leaves_the_rest():
    img = frame()
    out = draw_detections(img, [Detection(20.4, 30.0, 59.6, 70.0, 0.9, 0)], color=RED, thickness=1,
                          show_score=False)
    assert not img.any()  # the input frame is not drawn on
    ys, xs = np.nonzero(painted(out))
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 60, 30, 70)  # coordinates rounded to pixels
    for y, x in [(30, 20), (30, 45), (70, 33), (50, 20), (50, 60), (70, 60)]:
        assert tuple(out[y, x]) == RED, (y, x)
    assert not painted(out)[31:70, 21:60].any()  # nothing inside the box
    top = painted(out)[30, 20:61]
    assert top.all()  # a solid edge has no gap


def test_thickness_widens_the_edge():
    thin = painted(draw_detections(frame(), [Detection(40, 30, 80, 70, 0.9, 0)], thickness=1, show_score=False))
    thick = painted(draw_detections(frame(), [Detection(40, 30, 80, 70, 0.9, 0)], thickness=5, show_score=False))
    assert thick.sum() > 3 * thin.sum()
    assert thick[30, 60] and thick[32, 60] and not thin[32, 60]


def test_dashed_box_has_gaps_on_every_edge_but_stays_on_the_box():
    det = Detection(20, 30, 100, 80, 0.9, 0)
    solid = painted(draw_detections(frame(), [det], color=RED, thickness=1, show_score=False))
    dashed = painted(draw_detections(frame(), [det], style="dashed", color=RED, thickness=1, show_score=False))
    assert not (dashed & ~solid).any()  # every dashed pixel lies on the solid outline
    for edge in (dashed[30, 20:101], dashed[80, 20:101], dashed[30:81, 20], dashed[30:81, 100]):
        assert 0.3 * edge.size < edge.sum() < 0.8 * edge.size  # dashes and gaps, roughly half and half
    assert dashed[30, 20:25].all() and not dashed[30, 26:28].any()  # a 4 px dash (thickness 1), then a gap


def test_colour_by_class_unless_one_colour_is_given():
    dets = [Detection(10, 10, 40, 40, 0.9, 0), Detection(60, 10, 90, 40, 0.9, 1), Detection(110, 10, 140, 40, 0.9, 5)]
    out = draw_detections(frame(), dets, thickness=1, show_score=False)
    assert tuple(out[10, 25]) == CLASS_COLORS[0] and tuple(out[10, 75]) == CLASS_COLORS[1]
    assert tuple(out[10, 125]) == class_color(5) and class_color(5) not in (CLASS_COLORS[0], CLASS_COLORS[1])
    assert class_color(5) == class_color(8)  # unknown classes cycle through the fallback colours
    one = draw_detections(frame(), dets, color=RED, thickness=1, show_score=False)
    assert tuple(one[10, 25]) == tuple(one[10, 75]) == tuple(one[10, 125]) == RED


def test_label_and_score_are_written_above_the_box():
    det = Detection(20, 60, 180, 90, 0.87, 0, "relevant")
    bare = painted(draw_detections(frame(), [det], color=RED, thickness=1, show_score=False))
    labelled = painted(draw_detections(frame(), [det], color=RED, thickness=1))
    text = labelled & ~bare
    ys, xs = np.nonzero(text)
    assert ys.size and ys.max() <= 59 and xs.min() >= 20  # above the top edge, from the box's left
    # the label is the name when the model gave one, else the class index: a longer text is wider
    short = painted(draw_detections(frame(), [Detection(20, 60, 180, 90, 0.87, 0)], color=RED, thickness=1))
    assert np.nonzero(short & ~bare)[1].max() < xs.max()


def test_label_of_a_box_at_the_top_stays_in_the_frame():
    out = painted(draw_detections(frame(), [Detection(20, 0, 120, 40, 0.5, 1)], color=RED, thickness=1))
    bare = painted(draw_detections(frame(), [Detection(20, 0, 120, 40, 0.5, 1)], color=RED, thickness=1,
                                   show_score=False))
    assert (out & ~bare)[1:12].any()  # written at baseline y = 10, inside the box, not cut off above the frame


def test_no_detections_is_an_unchanged_copy():
    img = np.full((50, 60, 3), 7, np.uint8)
    out = draw_detections(img, [])
    assert out is not img and np.array_equal(out, img)
    out[0, 0] = 0
    assert img[0, 0, 0] == 7  # a copy, not a view


def test_unknown_style_rejected():
    with pytest.raises(ValueError, match="dashed"):
        draw_detections(frame(), [], style="dotted")


def test_a_state_label_colours_the_box_by_state_and_thickens_relevant_ones():
    from kd_traffic_light.core.drawing import STATE_COLORS

    img = frame()
    red = Detection(10, 10, 50, 60, 0.9, 0, "relevant_red")
    green = Detection(110, 10, 150, 60, 0.9, 8, "not_relevant_green")
    out = draw_detections(img, [red, green], thickness=1, show_score=False)
    assert tuple(out[10, 30]) == STATE_COLORS["red"] and tuple(out[11, 30]) == STATE_COLORS["red"]  # 2 px
    assert tuple(out[10, 130]) == STATE_COLORS["green"] and not out[11, 130].any()  # 1 px
    plain = draw_detections(img, [Detection(10, 10, 50, 60, 0.9, 1, "not_relevant")], thickness=1,
                            show_score=False)
    assert tuple(plain[10, 30]) == class_color(1)


def test_track_ids_are_written_and_the_signal_swatch_has_the_state_colour():
    from kd_traffic_light.core.drawing import STATE_COLORS, draw_signal

    img = np.zeros((120, 200, 3), np.uint8)
    det = Detection(50, 50, 60, 80, 0.9, 0, "relevant_red")
    with_id = draw_detections(img, [det], ids=["7"])
    without = draw_detections(img, [det])
    assert not np.array_equal(with_id, without)  # "#7 " written before the label
    with pytest.raises(ValueError):
        draw_detections(img, [det], ids=["1", "2"])
    out = draw_signal(img.copy(), "red", confidence=0.8)
    assert tuple(int(v) for v in out[8, 8]) == STATE_COLORS["red"]
    assert tuple(int(v) for v in draw_signal(img.copy(), "unknown")[8, 8]) == (255, 255, 255)
