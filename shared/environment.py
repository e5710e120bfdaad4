"""Environment variables read fast: `predict` reads its dozen settings on
every request (a value changed at run time applies to the next one), and
`os.environ.get` costs ~0.7 µs a variable (the key encoded, the value decoded,
through the Mapping machinery): ~9 µs of a ~400 µs request. The bytes mapping
behind `os.environ` on POSIX, with the keys encoded once, answers the same in
~1 µs for all of them. Any other mapping (tests pass dicts) is read as given.

`os.environ._data` is CPython's private attribute: an interpreter or a release
without it (or where it is not a dict) silently takes the slow path, with the
same values (tests/unit/test_environment.py compares both with `os.environ.get`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping


def read_variables(environ: Mapping[str, str], names: tuple[tuple[str, str], ...]) -> tuple[str | None, ...]:
    """The value of each (setting, VARIABLE) pair's variable in `environ`, None when unset."""
    data = getattr(environ, "_data", None) if environ is os.environ and os.name == "posix" else None
    if not isinstance(data, dict):
        return tuple(environ.get(variable) for _, variable in names)
    return tuple(None if value is None else os.fsdecode(value) for value in map(data.get, _encoded(names)))


@functools.cache
def _encoded(names: tuple[tuple[str, str], ...]) -> tuple[bytes, ...]:
    return tuple(os.fsencode(variable) for _, variable in names)
