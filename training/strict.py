"""Strict reading of the training configs (experiment, distillation): one error style, frozen values.

Every config problem is a ``training.errors.UsageError`` naming the file, the field and what was expected
(``<file>: <field>: expected ..., got ...`` or ``<file>: <field>: unknown key 'k' (allowed: ...)``). Values read
once are frozen (``FrozenMap`` for mappings, tuples for lists); ``thaw`` gives back the plain YAML/JSON form that
files and fingerprints are made of. See docs/training.md ("Configuration").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from training.errors import UsageError


class ConfigNotFound(UsageError, FileNotFoundError):
    """A config file (or a file a config names) that does not exist: a usage error, and a FileNotFoundError."""


class FrozenMap(Mapping[str, Any]):
    """A read-only mapping (picklable, equal to a dict with the same items); ``freeze`` builds them."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __hash__(self) -> int:
        return hash(tuple(self._data.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return FrozenMap, (self._data,)


def freeze(value: Any) -> Any:
    """Return ``value`` with every mapping a ``FrozenMap`` and every list a tuple, recursively."""
    if isinstance(value, Mapping) and not isinstance(value, FrozenMap):
        return FrozenMap((k, freeze(v)) for k, v in value.items())
    if isinstance(value, FrozenMap):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Return the plain form of ``value``: mappings as dicts, tuples as lists, recursively (YAML/JSON-ready)."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def unknown_keys(given: Iterable[Any], allowed: Iterable[Any], where: str) -> None:
    """Raise UsageError naming the first key of ``given`` not in ``allowed`` (and what is allowed)."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            raise UsageError(f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(map(str, allowed)))})")


def mapping(value: Any, where: str, what: str = "a mapping") -> dict[str, Any]:
    """Return ``value`` as a dict ({} for None); anything but a mapping is a UsageError naming ``where``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: expected {what}, got {value!r}")
    return dict(value)


def read_config(path: str | Path, missing: str) -> Any:
    """Parse the YAML file ``path``: a missing file is ``ConfigNotFound(missing)``, malformed YAML a UsageError."""
    from kd_traffic_light.core.atomic_io import read_yaml

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: expected a YAML config file, got a directory")
    if not path.is_file():
        raise ConfigNotFound(missing)
    try:
        return read_yaml(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
