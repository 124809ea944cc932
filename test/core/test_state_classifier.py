"""The crop classifier after a two-class detector: crops, the ONNX reader, folding, the detector with it.

Torch-free (the runtime-only venv runs it too): the classifier is built with ``onnx.helper`` and reads a crop's
mean colour (test/core/lean_models.py), so what it must answer is known from the frame painted here.
"""

from __future__ import annotations

import numpy as np
import pytest

from kd_traffic_light.core.classes import class_names
from kd_traffic_light.core.config import ConfigError, DetectorConfig
from kd_traffic_light.core.detector import ModelLoadError, TrafficLightDetector
from kd_traffic_light.core.state_classifier import (
    StateClassifier,
    StateModelError,
    crop_boxes,
    fold_classes,
    to_input,
)
from test.core.lean_models import make_colour_state_onnx, make_constant_onnx

RED, GREEN = (0, 0, 255), (0, 255, 0)  # BGR


@pytest.fixture(scope="module")
def colour_onnx(tmp_path_factory):
    return make_colour_state_onnx(tmp_path_factory.mktemp("state") / "colour.onnx")


def test_a_horizontal_head_is_turned_upright_red_on_top_only_when_asked(tmp_path):
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 50:70], frame[40:60, 90:110] = RED, GREEN     # a horizontal head: red left, green right
    box = np.array([[50, 40, 110, 60]])
    upright = crop_boxes(frame, box, (32, 16), margin=0.0, upright=True)[0]
    assert tuple(upright[4, 8]) == RED and tuple(upright[27, 8]) == GREEN
    flat = crop_boxes(frame, box, (32, 16), margin=0.0)[0]      # squashed as it is: red left, green right
    assert tuple(flat[16, 2]) == RED and tuple(flat[16, 13]) == GREEN
    tall = np.array([[50, 20, 70, 60]])                          # an upright box is never turned
    assert (crop_boxes(frame, tall, (32, 16), upright=True) == crop_boxes(frame, tall, (32, 16))).all()
    assert StateClassifier(make_colour_state_onnx(tmp_path / "up.onnx", upright=True)).upright
    assert not StateClassifier(make_colour_state_onnx(tmp_path / "plain.onnx")).upright  # older exports


def test_crops_take_the_box_with_its_margin_and_keep_the_frame_edge():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[20:60, 50:70] = RED                      # a 20 x 40 light
    frame[:, 180:] = GREEN                          # a green band at the right edge
    crops = crop_boxes(frame, np.array([[50, 20, 70, 60], [190, 10, 210, 50], [300, 10, 320, 50]]), (32, 16),
                       margin=0.25)
    assert crops.shape == (3, 32, 16, 3) and crops.dtype == np.uint8
    # first: 25 % margin each side -> 30 x 60 px around the 20 x 40 light, resized to 16 x 32: red in the middle
    assert tuple(crops[0, 16, 8]) == RED and tuple(crops[0, 0, 0]) == (0, 0, 0)
    red_share = (crops[0, :, :, 2] > 127).mean()
    assert 0.3 < red_share < 0.6                   # (20 x 40) / (30 x 60) = 0.44 of the crop
    # second: clipped at the right edge, what is left (175..200) is green up to its right side
    assert tuple(crops[1, 16, 15]) == GREEN
    # third: wholly outside the frame -> black
    assert not crops[2].any()
    blob = to_input(crops[:1])
    assert blob.shape == (1, 3, 32, 16) and blob.dtype == np.float32
    assert blob[0, 0, 16, 8] == 1.0 and blob[0, 2, 16, 8] == 0.0  # RGB order, [0, 1]


def test_fold_classes_places_relevance_and_state_in_the_folded_scheme():
    names = class_names("relevance_state")
    folded = fold_classes(np.array([0, 1, 0, 1]), np.array([0, 3, 2, 4]))
    assert [names[i] for i in folded] == ["relevant_red", "not_relevant_green", "relevant_red_yellow",
                                          "not_relevant_off"]


def test_the_reader_answers_from_the_crop(colour_onnx):
    frame = np.zeros((120, 240, 3), np.uint8)
    frame[10:50, 20:40] = RED
    frame[10:50, 100:120] = GREEN
    reader = StateClassifier(colour_onnx)
    assert reader.crop_hw == (32, 16) and reader.margin == 0.15
    states, probs = reader.classify(frame, np.array([[20, 10, 40, 50], [100, 10, 120, 50], [180, 60, 200, 100]]))
    assert states.tolist() == [0, 3, 4]             # red, green, off (black)
    assert probs.shape == (3,) and np.all((probs > 0.2) & (probs <= 1.0))
    assert reader.classify(frame, np.zeros((0, 4)))[0].shape == (0,)


def test_a_bad_state_model_is_refused_naming_the_file_and_what_is_missing(tmp_path):
    with pytest.raises(StateModelError, match=r"state model '.*nothing.onnx' does not exist"):
        StateClassifier(tmp_path / "nothing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(StateModelError, match=r"junk.onnx' cannot be loaded by ONNX Runtime"):
        StateClassifier(tmp_path / "junk.onnx")
    bare = make_colour_state_onnx(tmp_path / "bare.onnx", with_metadata=False)
    with pytest.raises(StateModelError, match=r"bare.onnx' lacks metadata \['kd_states', 'kd_crop_hw'"):
        StateClassifier(bare)
    other = make_colour_state_onnx(tmp_path / "other.onnx", states=["green", "red", "yellow", "red_yellow", "off"])
    with pytest.raises(StateModelError, match=r"predicts states \['green', 'red'.*expected \['red', 'yellow'"):
        StateClassifier(other)


def test_config_takes_only_an_onnx_state_model():
    with pytest.raises(ConfigError, match=r"parameter 'state_model' = 'reader.pt'.*expected '' \(off\) or .*\.onnx"):
        DetectorConfig(model="m.onnx", state_model="reader.pt")
    assert DetectorConfig(model="m.onnx").state_model == ""


def test_the_detector_with_a_reader_publishes_folded_classes(constant_onnx, colour_onnx):
    path, expected = constant_onnx                 # two boxes on a 2048 x 1024 frame: relevant, not_relevant
    frame = np.zeros((1024, 2048, 3), np.uint8)
    for (x1, y1, x2, y2, _), colour in zip(expected, (RED, GREEN), strict=True):
        frame[int(y1) - 20:int(y2) + 20, int(x1) - 20:int(x2) + 20] = colour
    plain = TrafficLightDetector(DetectorConfig(model=str(path)))
    det = TrafficLightDetector(DetectorConfig(model=str(path), state_model=str(colour_onnx)))
    assert det.names == class_names("relevance_state")
    got, ref = det.predict(frame), plain.predict(frame)
    assert [d.label for d in ref] == ["relevant", "not_relevant"]
    assert [d.label for d in got] == ["relevant_red", "not_relevant_green"]
    assert [(d.xyxy, d.score) for d in got] == [(d.xyxy, d.score) for d in ref]  # boxes and scores as detected


def test_a_reader_needs_a_two_class_detector(tmp_path, colour_onnx):
    folded = make_constant_onnx(tmp_path / "folded.onnx", nc=10, names=class_names("relevance_state"))
    with pytest.raises(ModelLoadError, match=r"parameter 'state_model' reads the state of a two-class relevance "
                                             r"model's boxes, but model '.*folded.onnx' has classes \['relevant_red'"):
        TrafficLightDetector(DetectorConfig(model=str(folded), state_model=str(colour_onnx)))
    with pytest.raises(ModelLoadError,
                       match=r"state model '.*missing.onnx' does not exist \(parameter 'state_model'\)"):
        TrafficLightDetector(DetectorConfig(model=str(make_constant_onnx(tmp_path / "two.onnx")),
                                            state_model=str(tmp_path / "missing.onnx")))


def test_green_needs_its_probability_else_the_next_state_is_read():
    from kd_traffic_light.core.state_classifier import decide

    probs = np.array([[0.30, 0.0, 0.0, 0.70, 0.0],    # unsure green -> red
                      [0.02, 0.0, 0.0, 0.95, 0.03],   # sure green
                      [0.80, 0.1, 0.0, 0.10, 0.0]])   # red
    assert decide(probs)[0].tolist() == [3, 3, 0]
    states, p = decide(probs, 0.9)
    assert states.tolist() == [0, 3, 0] and p.tolist() == pytest.approx([0.30, 0.95, 0.80])
    with pytest.raises(ConfigError, match=r"parameter 'state_green_min_prob' = 1.5 .*a probability in \[0, 1\]"):
        DetectorConfig(model="m.onnx", state_green_min_prob=1.5)


def test_a_head_the_frame_cuts_is_never_read_green(colour_onnx):
    """A red head whose red lamp is above the frame shows dark lamps; green there would tell a car to drive."""
    from kd_traffic_light.core.state_classifier import cut_by_frame

    frame = np.zeros((120, 240, 3), np.uint8)
    frame[0:40, 20:40] = GREEN     # cut by the top edge
    frame[10:50, 100:120] = GREEN  # inside
    frame[80:120, 200:240] = GREEN  # cut by the bottom and right edges
    boxes = np.array([[20, 0, 40, 40], [100, 10, 120, 50], [200, 80, 240, 120]])
    assert cut_by_frame(boxes, 120, 240, 1.0).tolist() == [True, False, True]
    assert cut_by_frame(boxes, 120, 240, 0.0).tolist() == [False, False, False]
    assert cut_by_frame(boxes + [[0, 2, 0, 0], [0, 0, 0, 0], [0, 0, -2, -2]], 120, 240, 1.0).tolist() == [
        False, False, False]  # 2 px inside: not cut at 1 px
    reader = StateClassifier(colour_onnx)
    assert reader.classify(frame, boxes)[0].tolist() == [3, 3, 3]  # off: every green as read
    states, _ = reader.classify(frame, boxes, edge_px=1.0)
    assert states[1] == 3 and 3 not in states[[0, 2]].tolist()  # the cut ones: their next most probable state
    detector = DetectorConfig(model="m.onnx")
    assert detector.state_edge_px == 1.0
    with pytest.raises(ConfigError, match=r"parameter 'state_edge_px' = -1.0 .*pixels in \[0, 1000\] \(0: off\)"):
        DetectorConfig(model="m.onnx", state_edge_px=-1.0)


def test_a_classifier_whose_input_does_not_fit_its_metadata_fails_at_load(tmp_path):
    import onnx

    path = make_colour_state_onnx(tmp_path / "odd.onnx")
    model = onnx.load(str(path))
    next(p for p in model.metadata_props if p.key == "kd_crop_hw").value = "[40, 20]"  # the graph takes 32 x 16
    onnx.save(model, str(path))
    with pytest.raises(StateModelError, match=r"odd.onnx' does not run on a \(40, 20\) crop"):
        StateClassifier(path)
