"""The revised state of one light on golden sequences: each rule of core/state_filter.py, frame by frame."""

from __future__ import annotations

import pytest

from kd_traffic_light.core.config import ConfigError, TrackingConfig
from kd_traffic_light.core.state_filter import StateFilter

DT = 1 / 15  # a 15 Hz camera


def run(observed: list[str | None], cfg: TrackingConfig | None = None, dt: float = DT) -> list[str]:
    """Feed ``observed`` at ``dt`` intervals; return the revised state after each frame."""
    f = StateFilter(cfg or TrackingConfig())
    return [f.update(o, i * dt) for i, o in enumerate(observed)]


def test_a_stop_state_is_taken_at_its_second_frame_and_a_single_misread_is_not():
    assert run(["green"] * 3 + ["red", "red"]) == ["unknown", "unknown", "green", "green", "red"]
    assert run(["red", "red", "red"]) == ["unknown", "red", "red"]
    assert run(["green"] * 3 + ["red", "green", "green"])[3:] == ["green"] * 3
    assert run(["green"] * 3 + ["red"], TrackingConfig(stop_frames=1))[-1] == "red"


def test_green_needs_k_consistent_frames():
    cfg = TrackingConfig(green_frames=3)
    out = run(["red"] * 2 + ["green", "green", "red", "green", "green", "green"], cfg)
    assert out == ["unknown", "red", "red", "red", "red", "red", "red", "green"]


def test_yellow_after_red_is_kept_red_and_red_yellow_after_red_is_taken():
    assert run(["red", "red", "yellow", "yellow"]) == ["unknown", "red", "red", "red"]
    assert run(["red", "red", "red_yellow", "red_yellow"]) == ["unknown", "red", "red", "red_yellow"]
    # green -> yellow is the plausible order: taken at its second frame
    assert run(["green"] * 3 + ["yellow"] * 2)[-2:] == ["green", "yellow"]


def test_a_stop_state_is_held_through_missed_frames_until_the_hold_expires():
    cfg = TrackingConfig(hold_s=0.5)
    out = run(["red", "red"] + [None] * 12, cfg)
    held = [s for s in out[2:] if s == "red"]
    # the last red frame is at 1 * DT; red is held while t - DT <= 0.5 s, i.e. up to frame 8
    assert len(held) == 7 and out[2:9] == ["red"] * 7 and set(out[9:]) == {"unknown"}


def test_a_hold_expiring_on_a_dark_light_says_off():
    cfg = TrackingConfig(hold_s=0.2)
    out = run(["yellow", "yellow"] + ["off"] * 8, cfg)
    assert out[2:5] == ["yellow"] * 3 and out[-1] == "off"


def test_green_is_never_held_through_unknown():
    out = run(["green"] * 4 + [None, "off"])
    assert out[3] == "green" and out[4:] == ["unknown", "unknown"]


def test_green_lost_for_one_frame_comes_back_at_once_but_not_after_the_hold():
    cfg = TrackingConfig(hold_s=0.5)
    out = run(["green"] * 4 + [None, "green"], cfg)
    assert out[-2:] == ["unknown", "green"]
    out = run(["green"] * 4 + [None] * 10 + ["green", "green", "green"], cfg)
    assert out[-3:] == ["unknown", "unknown", "green"]  # k = 3 frames again


def test_flashing_yellow_is_its_own_status_and_a_pulse_dropout_is_not_flashing():
    f = StateFilter(TrackingConfig())
    # night-mode yellow at 1 Hz seen at 10 Hz: 5 frames lit, 5 dark
    cycle = (["yellow"] * 5 + ["off"] * 5) * 4
    states, flashing = [], []
    for i, o in enumerate(cycle):
        states.append(f.update(o, i * 0.1))
        flashing.append(f.flashing)
    assert flashing[-1] and states[-1] == "yellow"
    assert all(s in ("yellow", "unknown") for s in states)
    # a steady yellow with two LED pulse frames caught dark
    f = StateFilter(TrackingConfig())
    seq = ["green"] * 3 + ["yellow"] * 10 + ["off"] + ["yellow"] * 10 + ["off"] + ["yellow"] * 5
    for i, o in enumerate(seq):
        f.update(o, i * DT)
        assert not f.flashing


def test_unknown_observation_is_refused():
    with pytest.raises(ValueError, match="observed state 'blue'"):
        StateFilter().update("blue", 0.0)


def test_bad_filter_parameters_are_named():
    with pytest.raises(ConfigError) as exc:
        TrackingConfig(green_frames=0, hold_s=-1.0, flash_toggles=1, track_gate="wide")
    assert set(exc.value.problems) == {"green_frames", "hold_s", "flash_toggles", "track_gate"}
    assert "parameter 'green_frames' = 0" in exc.value.problems["green_frames"]


def test_a_green_light_lost_every_other_frame_is_not_flashing_nor_held():
    f = StateFilter(TrackingConfig())
    out = [f.update("green" if i % 2 == 0 or i < 4 else None, i * DT) for i in range(30)]
    assert not f.flashing
    assert all(s == "unknown" for i, s in enumerate(out) if i >= 4 and i % 2 == 1)  # never held green


def test_a_dark_light_lost_for_a_moment_stays_off():
    cfg = TrackingConfig(hold_s=0.3)
    out = run(["off"] * 3 + [None] * 2 + ["off"] + [None] * 8, cfg)
    assert out[:6] == ["unknown", "off", "off", "off", "off", "off"] and out[-1] == "unknown"


def test_a_missed_frame_neither_breaks_nor_extends_a_run():
    # red, lost, red: taken at the second red frame; green, lost, green, green: k = 3 green frames
    assert run(["green"] * 3 + ["red", None, "red"])[-1] == "red"
    assert run(["red"] * 2 + ["green", None, "green", "green"])[-2:] == ["red", "green"]
    # but a light lost for longer than hold_s starts counting again
    out = run(["red"] * 2 + ["green"] * 2 + [None] * 30 + ["green"], TrackingConfig(hold_s=0.5))
    assert out[-1] != "green"
