import pytest

from kd_traffic_light.core.config import ComparisonConfig, ConfigError, DetectorConfig, NodeConfig, type_problems


@pytest.mark.parametrize(
    ("field", "value"),
    [("model", ""), ("device", "gpu"), ("device", "cuda:x"), ("imgsz", 100), ("imgsz", 0), ("conf", 1.5),
     ("iou", -0.1), ("max_det", 0), ("threads", -1)],
)
def test_detector_config_rejects_bad_values_naming_the_parameter(field, value):
    kwargs = {"model": "m.onnx", field: value}
    with pytest.raises(ConfigError, match=f"parameter '{field}'"):
        DetectorConfig(**kwargs)


@pytest.mark.parametrize(
    ("field", "value"),
    [("image_topics", ()), ("image_topics", ("a", "a")), ("input_transport", "theora"),
     ("image_reliability", "sometimes"), ("max_image_age_s", -1.0), ("fresh_wait", 1.0), ("fresh_wait", -0.1),
     ("max_image_pixels", 0)],
)
def test_node_config_rejects_bad_values_naming_the_parameter(field, value):
    with pytest.raises(ConfigError, match=f"parameter '{field}'"):
        NodeConfig(**{field: value})


def test_node_config_freezes_topics_as_tuple():
    cfg = NodeConfig(image_topics=["cam0/image", "cam1/image"])
    assert cfg.image_topics == ("cam0/image", "cam1/image")
    with pytest.raises(AttributeError):
        cfg.conf = 0.1  # frozen


def test_every_bad_field_is_reported_on_its_own_line():
    with pytest.raises(ConfigError) as err:
        DetectorConfig(model="", conf="abc", imgsz=64.0, half=1)
    assert list(err.value.problems) == ["model", "imgsz", "half", "conf"]  # field order
    assert str(err.value).splitlines() == list(err.value.problems.values())
    assert err.value.problems["conf"] == "parameter 'conf' = 'abc' (string) is invalid: expected a float in [0, 1]"
    assert err.value.problems["imgsz"].startswith("parameter 'imgsz' = 64.0 (float) is invalid: expected an integer")


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [(DetectorConfig, "conf", True), (DetectorConfig, "max_det", 2.0), (DetectorConfig, "agnostic_nms", "yes"),
     (NodeConfig, "image_topics", "image"), (NodeConfig, "image_topics", ["a", 1]), (NodeConfig, "autostart", 1),
     (ComparisonConfig, "window", "10"), (ComparisonConfig, "records_path", 5),
     (ComparisonConfig, "pair_timeout_s", 0)],
)
def test_wrong_types_are_config_errors_naming_the_parameter(cls, field, value):
    kwargs = {"model": "m.onnx"} if cls is DetectorConfig else {}
    with pytest.raises(ConfigError, match=f"^parameter '{field}' "):
        cls(**kwargs, **{field: value})


def test_type_problems_leave_ranges_to_the_config():
    assert type_problems(DetectorConfig, {"conf": 7.0, "model": ""}) == {}  # well typed; the range is checked later
    assert list(type_problems(NodeConfig, {"image_topics": ["a"], "autostart": "no"})) == ["autostart"]


def test_comparison_config_cross_check_and_defaults():
    with pytest.raises(ConfigError, match=r"parameter 'error_f1' = 0.5 \(float\) is invalid: expected .* warn_f1"):
        ComparisonConfig(warn_f1=0.3, error_f1=0.5)
    assert ComparisonConfig(iou_threshold=1).iou_threshold == 1.0


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"cache_size": 0}, "cache_size"),
        ({"window": 0}, "window"),
        ({"iou_threshold": 0.0}, "iou_threshold"),
        ({"warn_f1": 1.5}, "warn_f1"),
        ({"warn_f1": 0.3, "error_f1": 0.5}, "error_f1"),
        ({"records_path": "out.txt"}, "records_path"),
        ({"match_method": "x"}, "match_method"),
        ({"student_detections": ""}, "student_detections"),
    ],
)
def test_comparison_config_errors_name_the_parameter(kwargs, param):
    with pytest.raises(ValueError, match=f"'{param}'"):
        ComparisonConfig(**kwargs)


def test_comparison_config_defaults_valid():
    cfg = ComparisonConfig(records_path="x.jsonl")
    assert cfg.iou_threshold == 0.5 and cfg.student_detections == "/student/detector/detections"
