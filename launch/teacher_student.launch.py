"""Student and teacher detectors on the same camera, plus the online comparison.

    ros2 launch kd_traffic_light teacher_student.launch.py \
        student_model:=/path/student.onnx teacher_model:=/path/teacher.pt bag:=/path/to/bag rviz:=true

Starts `/student/detector` and `/teacher/detector` (`detector_node` with config/student.yaml and
config/teacher.yaml), `/comparison/comparison` (`comparison_node` with config/comparison.yaml) and, with
`bag:=<path>`, `ros2 bag play <path> --clock` with use_sim_time on every node (ros2bag and, for .mcap
bags, rosbag2_storage_mcap: both in package.xml). `student_model:=` and `teacher_model:=` are required:
without them launch refuses to start and names the missing argument. The pip setup's equivalent is
`python -m kd_traffic_light.tools.bag_eval`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "kd_traffic_light"
SHARE = get_package_share_directory(PACKAGE)


def _config(name):
    return os.path.join(SHARE, "config", name)


def _detector(role, params_file, model, image_topic, overrides):
    """One detector: `<role>/detector` with its params file and the (required) model argument."""
    return Node(package=PACKAGE, executable="detector_node", name="detector", namespace=f"/{role}",
                output="screen", emulate_tty=True,
                remappings=[("image", image_topic)],  # the node appends /compressed to the remapped base
                parameters=[params_file, overrides, {"model": ParameterValue(model, value_type=str)}])


def generate_launch_description():
    image_topic = LaunchConfiguration("image_topic")
    bag = LaunchConfiguration("bag")
    bag_given = PythonExpression(["'", bag, "' != ''"])
    # use_sim_time:=true, or implied by bag:=<path> (the bag drives /clock).
    sim_time = ParameterValue(
        PythonExpression(["'", LaunchConfiguration("use_sim_time"), "' == 'true' or '", bag, "' != ''"]),
        value_type=bool)
    overrides = {
        "use_sim_time": sim_time,
        "input_transport": ParameterValue(LaunchConfiguration("input_transport"), value_type=str),
    }

    args = [
        DeclareLaunchArgument("student_params_file", default_value=_config("student.yaml"),
                              description="Parameters file of the student detector (keyed /**:)"),
        DeclareLaunchArgument("teacher_params_file", default_value=_config("teacher.yaml"),
                              description="Parameters file of the teacher detector (keyed /**:)"),
        DeclareLaunchArgument("comparison_params_file", default_value=_config("comparison.yaml"),
                              description="Parameters file of the comparison node (keyed /**:); set "
                                          "records_path there for per-frame CSV/JSONL records"),
        DeclareLaunchArgument("student_model",
                              description="REQUIRED: student model path (.onnx, OpenVINO dir, .engine, or .pt "
                                          "with ultralytics installed); overrides student_params_file's 'model'"),
        DeclareLaunchArgument("teacher_model",
                              description="REQUIRED: teacher model path (.onnx, OpenVINO dir, .engine, or .pt "
                                          "with ultralytics installed); overrides teacher_params_file's 'model'"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="Camera topic both detectors and the comparison overlay use"),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="Use /clock as the node clock (implied by bag:=)"),
        DeclareLaunchArgument("input_transport", default_value="raw", choices=["raw", "compressed"],
                              description="raw: sensor_msgs/Image; compressed: <image_topic>/compressed "
                                          "(overrides the params files)"),
        DeclareLaunchArgument("bag", default_value="",
                              description="rosbag2 to play with 'ros2 bag play <bag> --clock' "
                                          "(sets use_sim_time); empty = live camera"),
        DeclareLaunchArgument("bag_rate", default_value="1.0",
                              description="Playback rate of bag:= (lower it when the teacher is slow)"),
        DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"],
                              description="Open RViz2 with the shipped kd_traffic_light.rviz"),
        DeclareLaunchArgument("rviz_config", default_value=_config("kd_traffic_light.rviz"),
                              description="RViz2 configuration used with rviz:=true"),
    ]

    return LaunchDescription([
        *args,
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
        _detector("student", LaunchConfiguration("student_params_file"), LaunchConfiguration("student_model"),
                  image_topic, overrides),
        _detector("teacher", LaunchConfiguration("teacher_params_file"), LaunchConfiguration("teacher_model"),
                  image_topic, overrides),
        Node(package=PACKAGE, executable="comparison_node", name="comparison", namespace="/comparison",
             output="screen", emulate_tty=True,
             parameters=[LaunchConfiguration("comparison_params_file"), {
                 "use_sim_time": sim_time,
                 "image_topic": ParameterValue(image_topic, value_type=str),
             }]),
        ExecuteProcess(
            cmd=["ros2", "bag", "play", bag, "--clock", "100", "--rate", LaunchConfiguration("bag_rate")],
            output="screen", condition=IfCondition(bag_given)),
        Node(package="rviz2", executable="rviz2", name="rviz2",
             arguments=["-d", LaunchConfiguration("rviz_config")], parameters=[{"use_sim_time": sim_time}],
             condition=IfCondition(LaunchConfiguration("rviz")), output="screen"),
    ])
