"""Put another function in the model's place for the length of a ``with``, and always put it back.

The swap contract, which the core keeps and this module relies on:
    - the model's modules (layers, losses, vae) call each function through a module attribute:
      its own (``layers.dense_backward``), or the same function imported by name into another
      module (``from .layers import dense_backward`` makes ``vae.dense_backward``); the model
      never holds a function in a closure or a default argument where a swap cannot reach it;
    - the activations are the one registry of function pairs: ``layers.ACTIVATIONS[name]`` is an
      ``Activation(forward, backward)``, looked up when the model runs, not when it is imported.
``swapped`` replaces a function in every module attribute of layers, losses and vae that holds
it, and in the field of every activation entry that holds it, and undoes every replacement on
exit, even if the body raises: the installed package is never changed, not on disk, and not in
memory once the ``with`` is over. The likelihoods are no such registry (the model picks its
likelihood's functions by name), so replacing the module attributes reaches them. The planted
bugs (breaks.py) and the students' functions (grader.py) both enter the model this way.
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
