import pytest

from kd_traffic_light.core.config import ConfigError, DetectorConfig, NodeConfig


@pytest.mark.parametrize(
    ("field", "value"),
    [("model", ""), ("device", "gpu"), ("device", "cuda:x"), ("imgsz", 100), ("imgsz", 0), ("conf", 1.5),
     ("iou", -0.1), ("max_det", 0)],
)
def test_detector_config_rejects_bad_values_naming_the_parameter(field, value):
    kwargs = {"model": "m.onnx", field: value}
    with pytest.raises(ConfigError, match=f"parameter '{field}'"):
        DetectorConfig(**kwargs)


@pytest.mark.parametrize(
    ("field", "value"),
    [("image_topics", ()), ("image_topics", ("a", "a")), ("input_transport", "theora"),
     ("image_reliability", "sometimes"), ("max_image_age_s", -1.0), ("max_image_pixels", 0)],
)
def test_node_config_rejects_bad_values_naming_the_parameter(field, value):
    with pytest.raises(ConfigError, match=f"parameter '{field}'"):
        NodeConfig(**{field: value})


def test_node_config_freezes_topics_as_tuple():
    cfg = NodeConfig(image_topics=["cam0/image", "cam1/image"])
    assert cfg.image_topics == ("cam0/image", "cam1/image")
    with pytest.raises(AttributeError):
        cfg.conf = 0.1  # frozen


def test_core_does_not_import_ros():
    import subprocess
    import sys

    code = "import sys, kd_traffic_light.core.detector, kd_traffic_light.core.runtime; " \
           "import kd_traffic_light.core.drawing, kd_traffic_light.core.matching; " \
           "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs', 'vision_msgs')]; " \
           "assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)
