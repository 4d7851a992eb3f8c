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


def replace(original: Callable, replacement: Callable, modules=MODULES) -> list[Callable[[], None]]:
    """Replace ``original`` by ``replacement`` in ``modules``; returns the steps that undo it.

    A module attribute that is ``original`` is replaced, and so is an entry of a module-level
    dict that is ``original`` or a NamedTuple holding it in a field (the activations' registry):
    there only that field changes, so the entry keeps its type.
    """
    undo = []
    for module in modules:
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, replacement)
                undo.append(lambda m=module, a=attr: setattr(m, a, original))
            elif isinstance(value, dict) and not attr.startswith("__"):
                undo += _replace_in(value, original, replacement)
    return undo


def _replace_in(registry: dict, original, replacement) -> list[Callable[[], None]]:
    undo = []
    for key, entry in list(registry.items()):
        if entry is original:
            registry[key] = replacement
        elif isinstance(entry, tuple) and hasattr(entry, "_replace"):
            fields = {field: replacement
                      for field, value in entry._asdict().items() if value is original}
            if not fields:
                continue
            registry[key] = entry._replace(**fields)
        else:
            continue
        undo.append(lambda r=registry, k=key, e=entry: r.__setitem__(k, e))
    return undo


@contextlib.contextmanager
def swapped(original: Callable, replacement: Callable, modules=MODULES) -> Iterator[int]:
    """Replace ``original`` by ``replacement`` wherever the model looks it up;
    yields how many places.

    Every replacement is undone on exit, even if the body raises. Zero places means
    ``original`` is on no path of the model.
    """
    undo = replace(original, replacement, modules)
    try:
        yield len(undo)
    finally:
        for restore in reversed(undo):
            restore()


@contextlib.contextmanager
def registered(registry: dict, key: str, entry) -> Iterator[None]:
    """Add ``registry[key] = entry`` for the length of a ``with``
    (a new activation, say), then remove it.

    Refuses a key the registry already has: a student's entry never hides the library's.
    """
    if key in registry:
        raise ValueError(f"{key!r} is already registered; choose another name")
    registry[key] = entry
    try:
        yield
    finally:
        del registry[key]
