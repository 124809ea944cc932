"""Generator configuration (:class:`SynthConfig`, :data:`PRESETS`) and the ground truth it returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Values of :attr:`SynthConfig.lamps`: ``flat`` (the original look), ``camera`` (lamps as a camera images them).
LAMP_MODES = ("flat", "camera")
#: Values of :attr:`SynthConfig.state_label`.
STATE_LABELS = ("phase", "seen")
#: Values of :attr:`SynthConfig.state_shares`.
STATE_SHARE_MODES = ("dtld", "uniform")


@dataclass(frozen=True)
class SynthConfig:
    """Scene parameters. Sizes are the short side of a light's box in pixels at 2048x1024.

    Attributes:
        size_px: (min, max) short side at the first frame of a sequence (log-uniform); the default keeps
            lights >= 14 px after down-scaling 2048 -> 512 (>= 7 px at 256).
        tiny_fraction: fraction of lights drawn from ``tiny_px`` instead (tiny distant lights).
        tiny_px: (min, max) short side of tiny lights.
        extra_lights: (min, max) number of not-relevant lights per scene besides the ego heads.
        ego_heads: (min, max) number of relevant heads (pole, mast arm, far-side repeater).
        dusk_fraction: probability that a sequence is at dusk.
        occlusion_p: probability that a light gets an occluder in front of it.
        reflection_p: probability per sequence of a reflected light in a shop window.
        distractors: (min, max) number of tail-light cars and signs per scene.
        test_fraction: fraction of sequences in DTLD_test (the rest in DTLD_train).
        frame_interval_s: time between consecutive frames.
        speed_mps: (min, max) ego speed.
        truck_p: probability per drive that a truck ahead merges into the ego lane for a while and hides the
            lights behind it (lamps="camera" only; drawn from a stream of its own, so 0 changes nothing else).
        phase_s: (min, max) seconds a signal shows red or green (lamps="camera"; red_yellow lasts 1 s, yellow
            3-4 s). Real phases are 10-40 s; a camera-rate drive of a few seconds needs shorter ones to show changes.
        max_light_overlap: the largest share of one light's box that another light's box may cover, either way
            round, in any frame of the drive; of two lights over it, the one sampled later is left out (relevant
            heads are sampled first). Real heads stand apart, but with the big pixel sizes of the CPU profiles 1
            (keep all: the original scenes) puts heads behind one another, and a label then names a state that
            the picture shows on another head. Applied after every draw, so the lights kept are as with 1.
        state_label: ``phase`` (the default, the original labels): every head is labelled with the state its
            signal shows. ``seen`` (lamps="camera" only): with what the frame shows of it, as DTLD's annotators
            label an image: ``unknown`` when a lit lamp is hidden (by the head's occluder or the frame's edge).
            The signal's own state stays in the ground truth (:attr:`SynthLight.phase`), and the drive truth
            scores the signal against it.
        state_shares: how often a signal starts a drive in each state (lamps="camera" only). ``dtld`` (the
            default): DTLD's shares (green 56 %, red 30 %, off 5 %, yellow 4 %, red_yellow 2 %). ``uniform``: each
            of the five as often, for scenes that only teach a state reader the rare states (never for a
            detector's or a benchmark's held-out split, whose shares must stay DTLD's).
        write_v1: also write the v1.0 YAML label files.
        lamps: ``flat`` (flat lit discs, the original state mix; the default, output unchanged) or ``camera``
            (over-exposed white cores with coloured rims and halos, bloom, motion blur, exposure and white balance
            per sequence, sun-washed and back-lit heads, LED pulse frames; states with DTLD's shares and the
            German phase order). Camera draws come from their own generator, so the layout of a scene is the same
            in both modes.
    """

    size_px: tuple[float, float] = (56.0, 128.0)
    tiny_fraction: float = 0.1
    tiny_px: tuple[float, float] = (4.0, 12.0)
    extra_lights: tuple[int, int] = (1, 4)
    ego_heads: tuple[int, int] = (1, 3)
    dusk_fraction: float = 0.3
    occlusion_p: float = 0.15
    reflection_p: float = 0.3
    distractors: tuple[int, int] = (2, 6)
    test_fraction: float = 0.25
    frame_interval_s: float = 0.1
    speed_mps: tuple[float, float] = (4.0, 12.0)
    phase_s: tuple[float, float] = (10.0, 40.0)
    truck_p: float = 0.0
    max_light_overlap: float = 1.0
    state_label: str = "phase"
    state_shares: str = "dtld"
    write_v1: bool = True
    lamps: str = "flat"

    def __post_init__(self) -> None:
        if self.lamps not in LAMP_MODES:
            raise ValueError(f"SynthConfig.lamps: expected one of {', '.join(map(repr, LAMP_MODES))}, "
                             f"got {self.lamps!r}")
        if self.state_label not in STATE_LABELS or (self.state_label == "seen" and self.lamps != "camera"):
            raise ValueError(f"SynthConfig.state_label: expected one of {', '.join(map(repr, STATE_LABELS))} "
                             f"('seen' with lamps 'camera'), got {self.state_label!r} with lamps {self.lamps!r}")
        if self.state_shares not in STATE_SHARE_MODES or (self.state_shares != "dtld" and self.lamps != "camera"):
            raise ValueError(f"SynthConfig.state_shares: expected one of {', '.join(map(repr, STATE_SHARE_MODES))} "
                             f"('uniform' with lamps 'camera'), got {self.state_shares!r} with lamps {self.lamps!r}")
        if not 0.0 <= self.max_light_overlap <= 1.0:
            raise ValueError("SynthConfig.max_light_overlap: expected a share in [0, 1], "
                             f"got {self.max_light_overlap!r}")


#: Named presets: ``demo`` (big lights, CPU training works), ``hard`` (DTLD-like sizes, many tiny lights).
PRESETS = {
    "demo": SynthConfig(),
    "hard": SynthConfig(size_px=(8.0, 48.0), tiny_fraction=0.35, tiny_px=(3.0, 8.0), extra_lights=(2, 6),
                        occlusion_p=0.25, distractors=(4, 10)),
}


@dataclass
class SynthLight:
    """Ground truth of one light in one frame.

    ``x, y, w, h`` is the label box as written (may extend outside the image); ``box`` the clipped
    (x1, y1, x2, y2) or None; ``cls`` 0 relevant / 1 not_relevant; ``in_v1`` False for lights the v1.0
    labels do not contain (reflections, new in v2.0); ``phase`` the state the signal shows when the label's
    ``state`` is what the frame shows (``state_label`` "seen"), else None (the label's state is the signal's).
    """

    x: int
    y: int
    w: int
    h: int
    cls: int
    box: tuple[int, int, int, int] | None
    attributes: dict[str, str]
    unique_id: int
    track_id: str
    in_v1: bool = True
    phase: str | None = None

    @property
    def signal(self) -> str:
        """The state the light's signal shows in this frame (whatever the frame shows of it)."""
        return self.phase or self.attributes["state"]


@dataclass
class SynthFrame:
    """Ground truth of one frame: key ``City/Route/Sequence/file``, split, time stamp, lights."""

    key: str
    split: str
    time_stamp: float
    lights: list[SynthLight]
    dusk: bool
    velocity: float
    yaw_rate: float
    longitude: float
    latitude: float

    def signal_state(self) -> str | None:
        """Return the state of the signal governing the ego lane: what its relevant heads in view show (None: none).

        Every relevant head of a drive shows the same phase; a reflection is not a head.
        """
        states = [li.signal for li in self.lights
                  if li.cls == 0 and li.box is not None and li.attributes.get("reflection") != "reflected"]
        return max(set(states), key=states.count) if states else None


@dataclass
class SynthDataset:
    """What :func:`~training.data.synth.make_synthetic_dtld` wrote: root, label files and the ground truth."""

    root: Path
    v2: dict[str, Path]
    v1: dict[str, Path]
    frames: list[SynthFrame]

    def ground_truth(self, split: str | None = None, v1: bool = False
                     ) -> dict[str, list[tuple[int, tuple[int, int, int, int]]]]:
        """Return ``{key: sorted [(cls, clipped box)]}`` for a split (None = all), as a converter must give."""
        out = {}
        for f in self.frames:
            if split is not None and f.split != split:
                continue
            out[f.key] = sorted((li.cls, li.box) for li in f.lights
                                if li.box is not None and (li.in_v1 or not v1))
        return out

    @classmethod
    def load(cls, root: str | Path) -> SynthDataset:
        """Read back the frames and ground truth :func:`~training.data.synth.make_synthetic_dtld` wrote in ``root``."""
        import json

        root = Path(root)
        doc = json.loads((root / "synth_ground_truth.json").read_text(encoding="utf-8"))
        frames = []
        for f in doc["frames"]:
            lights = [SynthLight(**{**li, "box": None if li["box"] is None else tuple(li["box"])})
                      for li in f["lights"]]
            frames.append(SynthFrame(**{**f, "lights": lights}))
        return cls(root, {}, {}, frames)

    def sequences(self) -> list[str]:
        """Sequence folders ``City/Route/Sequence`` in generation order."""
        return list(dict.fromkeys(f.key.rsplit("/", 1)[0] for f in self.frames))
