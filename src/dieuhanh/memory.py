"""Work that builds many short-lived objects holding no cycles: the cyclic collector is paused, since
rescanning them costs more than the work (a third of a large trace, bench/tracing.py; a quarter of a
national analytics answer, bench/analytics.py). Reference counting still frees them."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
