"""DriveU Traffic Light Dataset (DTLD) -> YOLO conversion (``python -m training data convert-dtld``).

Modules, in the order the data flows: :mod:`.labels` (label files -> records, attribute vocabulary, class
mapping), :mod:`.images` (12-bit Bayer TIFF decode), :mod:`.options`, :mod:`.splits` (per-split frames, val
draw), :mod:`.jobs` (image decode jobs, process pool), :mod:`.yolo` (label lines, filters, clipping),
:mod:`.output` (atomic writes, resume fingerprint, data.yaml), :mod:`.summary`, :mod:`.convert`.
The main names are importable from here (``from training.data.dtld import ConvertOptions, convert_dtld``).
Format facts: docs/dtld_format.md; conversion behaviour: docs/training.md.
"""

from training.data.dtld.convert import convert_dtld
from training.data.dtld.images import decode_bayer, read_dtld_image
from training.data.dtld.labels import ATTRIBUTE_VALUES, DtldFormatError, DtldFrame, load_labels
from training.data.dtld.options import ConvertOptions
from training.data.dtld.yolo import parse_filters

__all__ = [
    "ATTRIBUTE_VALUES", "ConvertOptions", "DtldFormatError", "DtldFrame", "convert_dtld", "decode_bayer", "load_labels",
    "parse_filters", "read_dtld_image",
]
