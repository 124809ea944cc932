"""Class schemes: which YOLO classes a model predicts, and how a class name reads as relevance and state.

Two schemes (docs/dtld_format.md, section 5):

- ``relevance`` (the source study's): ``relevant``, ``not_relevant``.
- ``relevance_state``: relevance folded with the light's state, ``<relevance>_<state>`` for every relevance in
  :data:`RELEVANCE` and state in :data:`STATES`, relevance-major (``relevant_red`` = 0 ...
  ``not_relevant_off`` = 9). DTLD's ``unknown`` state is not a class: a label that says "the annotator could not
  tell" is not a look a detector can learn, and a model that answers "unknown" gives a planner nothing; the
  converter drops those lights and counts them.

A subscriber reads a detection's class name (the model's ``names``, published in ``LabelInfo``) with
:func:`split_label`: it needs no table of ours, only the rule ``<relevance>[_<state>]``.
"""

from __future__ import annotations

#: Relevance values, in class order.
RELEVANCE: tuple[str, ...] = ("relevant", "not_relevant")
#: Light states a model can predict, in class order within one relevance (DTLD's, without ``unknown``).
STATES: tuple[str, ...] = ("red", "yellow", "red_yellow", "green", "off")

#: Scheme name -> class names in class-id order.
SCHEMES: dict[str, tuple[str, ...]] = {
    "relevance": RELEVANCE,
    "relevance_state": tuple(f"{r}_{s}" for r in RELEVANCE for s in STATES),
}
DEFAULT_SCHEME = "relevance"


def check_scheme(scheme: str) -> str:
    """Return ``scheme`` when it names a scheme, else raise ValueError listing the schemes."""
    if scheme not in SCHEMES:
        raise ValueError(f"class scheme {scheme!r}: expected one of {sorted(SCHEMES)}")
    return scheme


def class_names(scheme: str = DEFAULT_SCHEME) -> dict[int, str]:
    """Return ``{class id: name}`` of a scheme (the ``names`` a trained model carries)."""
    return dict(enumerate(SCHEMES[check_scheme(scheme)]))


def class_id(scheme: str, relevance: str | None, state: str | None = None) -> int | None:
    """Return the class id of a light, or None when the scheme cannot place it (unknown relevance or state)."""
    names = SCHEMES[check_scheme(scheme)]
    name = relevance if scheme == "relevance" else f"{relevance}_{state}"
    if relevance not in RELEVANCE or (scheme != "relevance" and state not in STATES):
        return None
    return names.index(name)


def split_label(name: str) -> tuple[str | None, str | None]:
    """Read a class name as ``(relevance, state)``; either is None when the name does not carry it.

    ``"relevant"`` -> ``("relevant", None)``; ``"not_relevant_red_yellow"`` -> ``("not_relevant", "red_yellow")``;
    a name outside both schemes -> ``(None, None)``.
    """
    for rel in sorted(RELEVANCE, key=len, reverse=True):  # not_relevant before relevant
        if name == rel:
            return rel, None
        if name.startswith(rel + "_") and name[len(rel) + 1:] in STATES:
            return rel, name[len(rel) + 1:]
    return None, None


def scheme_of(names: dict[int, str] | list[str] | tuple[str, ...]) -> str | None:
    """Return the scheme whose class names are exactly ``names`` (in order), or None."""
    seq = tuple(names[k] for k in sorted(names)) if isinstance(names, dict) else tuple(names)
    return next((s for s, n in SCHEMES.items() if n == seq), None)
