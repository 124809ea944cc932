"""ROS-free core of kd_traffic_light: types, configs, detector, matching and drawing.

Importing this package never imports rclpy or ROS message modules, so everything here is usable and
testable without ROS.
"""

from kd_traffic_light.core.config import ConfigError, DetectorConfig, NodeConfig
from kd_traffic_light.core.types import CLASS_NAMES, Detection

__all__ = ["CLASS_NAMES", "ConfigError", "Detection", "DetectorConfig", "NodeConfig"]
