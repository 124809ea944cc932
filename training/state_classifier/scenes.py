"""More scenes for the crop classifier than for the detector, with every state as often.

At DTLD's state shares a train split of a few hundred frames holds a few dozen yellow and red_yellow lights, too
few to learn them. :func:`extra_scenes` draws an experiment's synthetic scenes again with a data seed of their
own and ``state_shares: uniform`` (training/data/synth/model.py), all of them train; :func:`with_extra_train`
writes a data.yaml whose train split is the experiment's plus theirs, its val and test splits the experiment's
(DTLD's shares: the classifier is chosen and scored on them). The demo and ``benchmarks/state_scheme.py`` use
both.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

#: The extra scenes' keys on top of the experiment's: every state as often, no held-out part.
EXTRA_SCENE = {"state_shares": "uniform", "test_fraction": 0.0}
#: Added to the experiment's data seed: scenes neither the experiment's nor a kd-gain second set's.
SEED_OFFSET = 100


def extra_scenes(exp, out: Path, sequences: int, workers: int = 1) -> Path:
    """Generate ``sequences`` scenes of ``exp`` (a ``synth`` experiment) under ``out``; the data.yaml (all train).

    The scenes are ``exp``'s with :data:`EXTRA_SCENE`, data seed ``exp``'s + :data:`SEED_OFFSET`, converted with
    the ``relevance_state`` classes. Made once; a rerun with the same settings finds them.
    """
    from training.errors import UsageError
    from training.experiment.data import prepare_data
    from training.strict import freeze

    if exp.data.source != "synth":
        raise UsageError(f"{exp.source}: data.source: extra classifier scenes need synthetic data, "
                         f"got {exp.data.source!r}")
    data = replace(exp.data, seed=exp.data.seed + SEED_OFFSET, sequences=sequences, val_images=0,
                   classes="relevance_state", scene=freeze({**dict(exp.data.scene), **EXTRA_SCENE}))
    return prepare_data(replace(exp, data=data), out, workers)


def with_extra_train(data_yaml: Path, extra_yaml: Path, out: Path) -> Path:
    """Write ``out``: ``data_yaml``'s dataset with ``extra_yaml``'s train split added to its own; return ``out``."""
    import yaml

    from training.state_classifier.data import dataset_info

    own, extra = dataset_info(data_yaml), dataset_info(extra_yaml)
    doc = {"train": [own["train"], extra["train"]], "val": own["val"], "test": own.get("test"),
           "nc": own["nc"], "names": own["names"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# {data_yaml} with the train scenes of {extra_yaml} added (the crop classifier's data)\n"
                   + yaml.safe_dump({k: v for k, v in doc.items() if v is not None}, sort_keys=False))
    return out
