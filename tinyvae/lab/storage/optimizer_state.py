"""A saved optimizer state, checked before an optimizer restores it.

optim.Optimizer.load_state_dict takes a state as it is; this is the bookkeeping that lets a
checkpoint's ``"step"`` and ``"<slot>/<parameter key>"`` arrays be trusted first, so that a
resumed run takes exactly the steps it would have taken, or is refused with a message naming
the key.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def parse_state(name: str, slot_names: tuple[str, ...], state, params: Mapping | None,
                current: Mapping | None) -> tuple[int, dict[str, dict[str, np.ndarray]]]:
    """(t, {slot: {key: array copy}}) from a state_dict(), after checking all of it.

    ``params`` (or, failing that, the optimizer's ``current`` first slot) is what the arrays
    must fit, unless the state is that of an optimizer that never stepped (step 0, no arrays).
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"{name} state must be a mapping of arrays, got {type(state).__name__}")
    if "step" not in state:
        raise ValueError(f"{name} state is missing the key 'step'")
    step = np.asarray(state["step"])
    if step.shape != () or not np.issubdtype(step.dtype, np.integer) or int(step) < 0:
        raise ValueError(f"{name} state 'step' must be a non-negative integer scalar, "
                         f"got shape {step.shape} dtype {step.dtype}")
    slots = _split_slots(name, slot_names, state)
    if slot_names:
        reference = slots[slot_names[0]]
        for slot in slot_names[1:]:
            _check_same_keys_and_shapes(slots[slot], reference, f"{name} state slot '{slot}'")
        if int(step) > 0 and not reference:
            raise ValueError(f"{name} state has step {int(step)} "
                             f"but no '{slot_names[0]}/<key>' arrays")
        fresh = int(step) == 0 and not reference  # the state of an optimizer that never stepped
        if params is not None and not fresh:
            check_state_fits_params(slots, params, f"{name} state")
        elif current and not fresh:
            check_state_fits_params(slots, current, f"{name} state")
    return int(step), {slot: {key: arr.copy() for key, arr in slots[slot].items()}
                       for slot in slot_names}


def _split_slots(name: str, slot_names, state) -> dict[str, dict[str, np.ndarray]]:
    """{slot: {parameter key: array}} from the flat "<slot>/<key>" names, each checked."""
    expected = "'step'" + "".join(f", '{slot}/<parameter key>'" for slot in slot_names)
    slots: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in slot_names}
    for full_key, arr in state.items():
        if full_key == "step":
            continue
        slot, sep, key = str(full_key).partition("/")
        if not sep or slot not in slots or not key:
            raise ValueError(f"{name} state has an unexpected key {full_key!r} "
                             f"(expected {expected})")
        arr = np.asarray(arr)
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{name} state {full_key!r} must be a floating-point array, "
                             f"got dtype {arr.dtype}")
        slots[slot][key] = arr
    return slots


def _check_same_keys_and_shapes(got: Mapping, want: Mapping, what: str) -> None:
    if got.keys() != want.keys():
        missing = sorted(want.keys() - got.keys())
        extra = sorted(got.keys() - want.keys())
        raise ValueError(f"{what} does not match: missing keys {missing}, unexpected keys {extra}")
    for key, arr in got.items():
        if np.shape(arr) != np.shape(want[key]):
            raise ValueError(f"{what}: {key!r} has shape {np.shape(arr)}, "
                             f"expected {np.shape(want[key])}")


def check_state_fits_params(slots: Mapping[str, Mapping], params: Mapping, what: str) -> None:
    """Every slot has exactly the keys, shapes and dtypes of ``params``."""
    for slot, arrays in slots.items():
        _check_same_keys_and_shapes(arrays, params, f"{what} '{slot}/...' against params")
        for key, arr in arrays.items():
            if arr.dtype != params[key].dtype:
                raise ValueError(f"{what} '{slot}/{key}' has dtype {arr.dtype}, "
                                 f"the parameter has {params[key].dtype}")


def load_checked(optimizer, state: Mapping[str, np.ndarray],
                 params: Mapping[str, np.ndarray] | None) -> None:
    """optimizer.load_state_dict(state) after parse_state has checked all of it (against params,
    unless it is the state of an optimizer that never stepped); a ValueError naming the key
    otherwise, with the optimizer unchanged."""
    current = optimizer.state[optimizer.slots[0]] if optimizer.slots else None
    parse_state(optimizer.name, optimizer.slots, state, params, current)
    optimizer.load_state_dict(state)
