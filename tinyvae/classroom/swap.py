"""Put another function in the model's place for the length of a ``with``, and always put it back.

The model finds a function in three kinds of places: a module attribute (``layers.dense_backward``),
the same function imported by name into another module (``vae.dense_backward``), and a registry
entry (``layers.ACTIVATIONS["tanh"].backward``). ``swapped`` replaces it in all of them and undoes
every replacement on exit, even if the body raises, so the installed package is never changed:
not on disk, and not in memory once the ``with`` is over. The planted bugs (breaks.py) and the
students' functions (grader.py) both enter the model this way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from .. import layers, losses, vae

MODULES = (layers, losses, vae)
REGISTRIES = (layers.ACTIVATIONS,)


@contextlib.contextmanager
def swapped(original: Callable, replacement: Callable) -> Iterator[int]:
    """Replace ``original`` by ``replacement`` wherever the model looks it up; yields how many places.

    A registry entry is a NamedTuple: only the field that held ``original`` changes, so the
    entry keeps its type. Zero places means ``original`` is on no path of the model.
    """
    undo = []
    for module in MODULES:
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, replacement)
                undo.append(lambda m=module, a=attr: setattr(m, a, original))
    for registry in REGISTRIES:
        for key, entry in list(registry.items()):
            fields = {field: replacement for field, value in entry._asdict().items() if value is original}
            if fields:
                registry[key] = entry._replace(**fields)
                undo.append(lambda r=registry, k=key, e=entry: r.__setitem__(k, e))
    try:
        yield len(undo)
    finally:
        for restore in reversed(undo):
            restore()


@contextlib.contextmanager
def registered(registry: dict, key: str, entry) -> Iterator[None]:
    """Add ``registry[key] = entry`` for the length of a ``with`` (a new activation, say), then remove it.

    Refuses a key the registry already has: a student's entry never hides the library's.
    """
    if key in registry:
        raise ValueError(f"{key!r} is already registered; choose another name")
    registry[key] = entry
    try:
        yield
    finally:
        del registry[key]
