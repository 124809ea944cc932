"""One traffic-light detector (vehicle use).

    ros2 launch kd_traffic_light detector.launch.py model:=/path/to/student.onnx image_topic:=/camera/image_raw

Starts `detector_node` as `<namespace>/detector` with `config/student.yaml` (override with `params_file:=`),
its input `image` remapped to `image_topic`, and optionally RViz with the shipped configuration.
`model:=` is required: without it launch refuses to start and names the argument.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "kd_traffic_light"
SHARE = get_package_share_directory(PACKAGE)


def generate_launch_description():
    params_file = LaunchConfiguration("params_file")
    model = LaunchConfiguration("model")
    image_topic = LaunchConfiguration("image_topic")
    namespace = LaunchConfiguration("namespace")
    use_sim_time = LaunchConfiguration("use_sim_time")
    input_transport = LaunchConfiguration("input_transport")
    rviz = LaunchConfiguration("rviz")
    rviz_config = LaunchConfiguration("rviz_config")

    overrides = {
        "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
        "input_transport": ParameterValue(input_transport, value_type=str),
    }
    detector = {
        "package": PACKAGE,
        "executable": "detector_node",
        "name": "detector",
        "namespace": namespace,
        "output": "screen",
        "emulate_tty": True,
        # The node appends /compressed to the remapped base topic itself (as image_transport does).
        "remappings": [("image", image_topic)],
    }

    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file", default_value=os.path.join(SHARE, "config", "student.yaml"),
            description="Parameters file of the detector (keyed /**:); default: the installed student.yaml"),
        DeclareLaunchArgument(
            "model",
            description="REQUIRED: model path (.onnx, OpenVINO *_openvino_model dir, .engine, or .pt with "
                        "ultralytics installed); overrides the params file's 'model'"),
        DeclareLaunchArgument(
            "image_topic", default_value="/camera/image_raw",
            description="Camera topic (sensor_msgs/Image; with input_transport:=compressed its "
                        "<image_topic>/compressed CompressedImage)"),
        DeclareLaunchArgument(
            "namespace", default_value="/student",
            description="Namespace of the detector node (topics: <namespace>/detector/detections, ...)"),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false", choices=["true", "false"],
            description="Use /clock (e.g. from 'ros2 bag play --clock') as the node clock"),
        DeclareLaunchArgument(
            "input_transport", default_value="raw", choices=["raw", "compressed"],
            description="raw: subscribe sensor_msgs/Image; compressed: <image_topic>/compressed "
                        "(overrides the params file)"),
        DeclareLaunchArgument(
            "rviz", default_value="false", choices=["true", "false"],
            description="Open RViz2 with the shipped kd_traffic_light.rviz"),
        DeclareLaunchArgument(
            "rviz_config", default_value=os.path.join(SHARE, "config", "kd_traffic_light.rviz"),
            description="RViz2 configuration used with rviz:=true"),
        # Large images: the shipped Fast DDS profile (shared memory with room for several 2048x1024 frames,
        # UDP and TCP so default and LARGE_DATA peers see the nodes; docs/runtime.md), LARGE_DATA where a profile
        # cannot load; keep the user's values.
        SetEnvironmentVariable(
            "FASTDDS_DEFAULT_PROFILES_FILE",
            EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                default_value=os.path.join(SHARE, "config", "fastdds_large_frames.xml"))),
        SetEnvironmentVariable(
            "FASTDDS_BUILTIN_TRANSPORTS",
            EnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", default_value="LARGE_DATA")),
        Node(**detector, parameters=[params_file, overrides, {"model": ParameterValue(model, value_type=str)}]),
        Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", rviz_config],
             parameters=[{"use_sim_time": ParameterValue(use_sim_time, value_type=bool)}],
             condition=IfCondition(rviz), output="screen"),
    ])
