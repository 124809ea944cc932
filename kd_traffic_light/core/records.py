"""The per-frame comparison records: their columns, how they are written, and how they are read back.

The comparison node writes one record per compared frame (:func:`frame_record`, :class:`RecordWriter`) to a
``.csv`` or ``.jsonl`` file; the bag evaluation reads that file back (:func:`parse_records`,
:func:`record_counts`, :func:`count_records`). Columns: ``stamp_ns``, ``stamp``, ``frame_id``, ``n_student``,
``n_teacher``, the match counts :data:`COUNT_COLUMNS`, ``precision``, ``recall``, ``f1``, ``mean_iou``,
``class_agreement``, ``student_latency_s``, ``teacher_latency_s``, for class names that carry a light state
(core/classes.py) ``state_pairs``, ``state_agree`` and ``state_agreement`` (pairs matched class-agnostically whose
states agree), and, per class name, ``precision_<name>``, ``recall_<name>``, ``f1_<name>``. An undefined value is
JSON null, or ``nan`` in a CSV.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path

from kd_traffic_light.core.classes import split_label
from kd_traffic_light.core.matching import Counts, FrameMetrics
from kd_traffic_light.core.pairing import Key

#: The columns of a record's match counts, pooled over frames with :class:`~kd_traffic_light.core.matching.Counts`.
COUNT_COLUMNS = ("tp", "fp", "fn")


def is_csv(path: str | Path) -> bool:
    """Whether a records file is CSV (by its suffix); anything else is JSON Lines."""
    return Path(path).suffix == ".csv"


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 6)


def frame_record(key: Key, m: FrameMetrics, student_latency: float, teacher_latency: float,
                 names: Mapping[int, str] | None = None) -> dict:
    """One per-frame record (flat columns for CSV; per-class values for every class in `names`)."""
    rec = {
        "stamp_ns": key[0], "stamp": key[0] / 1e9, "frame_id": key[1],
        "n_student": m.n_student, "n_teacher": m.n_teacher,
        "tp": m.counts.tp, "fp": m.counts.fp, "fn": m.counts.fn,
        "precision": _num(m.precision), "recall": _num(m.recall), "f1": _num(m.f1),
        "mean_iou": _num(m.mean_iou), "class_agreement": _num(m.class_agreement),
        "student_latency_s": _num(student_latency), "teacher_latency_s": _num(teacher_latency),
    }
    if any(split_label(str(n))[1] for n in (names or {}).values()):  # a scheme with states
        rec.update({"state_pairs": m.state_pairs, "state_agree": m.state_agree,
                    "state_agreement": _num(m.state_agreement)})
    for cid, name in (names or {}).items():
        c = m.per_class.get(cid)
        for stat in ("precision", "recall", "f1"):
            rec[f"{stat}_{name}"] = _num(getattr(c, stat)) if c else None
    return rec


class RecordWriter:
    """Appends one record per line to a .csv or .jsonl file, flushed after every record.

    Each record is written with a single `write` call on a file opened in append mode, so a reader (or a
    crash) sees whole lines only. A CSV header is written when the file is new or empty; its columns are
    those of the first record (later keys are left out, missing ones written as nan).
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.csv = is_csv(self.path)
        self._header_needed = self.csv and (not self.path.exists() or self.path.stat().st_size == 0)
        self._columns: list[str] | None = None
        self._fh = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()

    def write(self, record: dict) -> None:
        """Append `record` and flush."""
        if self.csv:
            if self._columns is None:
                self._columns = list(record)
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=self._columns, lineterminator="\n", restval="nan",
                                    extrasaction="ignore")
            if self._header_needed:
                writer.writeheader()
                self._header_needed = False
            writer.writerow({k: "nan" if v is None else v for k, v in record.items()})
            line = buf.getvalue()
        else:
            line = json.dumps(record) + "\n"
        self._fh.write(line)
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def parse_records(text: str, path: str | Path) -> list[dict]:
    """Return the records in a records file's ``text`` (CSV or JSON Lines by ``path``'s suffix).

    CSV values stay strings.

    A malformed JSON line raises ValueError (json's own, not naming the file).
    """
    if is_csv(path):
        return list(csv.DictReader(text.splitlines()))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def record_counts(record: Mapping) -> Counts:
    """Return the match counts of one record (ints, or their strings from a CSV).

    A missing column raises KeyError, a value that is not an integer ValueError or TypeError.
    """
    return Counts(*(int(record[c]) for c in COUNT_COLUMNS))


def count_records(path: Path) -> int:
    """Return the number of records written so far (lines after a CSV header); 0 without the file.

    Cheap and tolerant, for watching a file that is still being written: lines are counted, not parsed.
    """
    if not path.exists():
        return 0
    lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    return max(0, len(lines) - 1) if is_csv(path) else len(lines)
