"""What a checkpoint's saved state must be before a run trusts it: the random generator's state,
the optimizer's memory and the history of the finished epochs.

Each of these could be well-formed arrays and JSON and still be poison: a Mersenne Twister
position past its table (numpy then crashes the process), an Adam second moment of 1e30 (every
later step is divided by 10^15, so training goes on, silently frozen), a history entry whose
"elapsed" is NaN (the run crashes after a full epoch, or calls the good model diverged). Every
check fails through the caller's ``fail(what)``, which names the file; ``what`` names the key.
"""

from __future__ import annotations

import math

import numpy as np

from ...optim import Optimizer

HISTORY_FIELDS = ("epoch", "beta", "train_loss", "train_recon", "train_kl",
                  "test_loss", "test_recon", "test_kl",
                  "seconds", "samples_per_sec", "elapsed")  # lab/training/runner.py writes these
_NULLABLE = ("test_loss", "test_recon", "test_kl")  # None when a run has no test set

# A plausibility bound: a VAE whose gradients reached 1e10 nats per unit of a parameter has
# diverged long before (the runner stops a run whose loss or parameters stop being finite).
# An optimizer state that implies a larger gradient was not written by a run of tinyvae.
MAX_GRADIENT = 1e10


def check_history_entries(history: list[dict], fail) -> None:
    """Entry n has epoch n and every field of HISTORY_FIELDS as a finite number (the test
    losses may be null); what an after_epoch hook added must be a finite number, a bool, a
    string or null."""
    for number, record in enumerate(history, start=1):
        missing = [name for name in HISTORY_FIELDS if name not in record]
        if missing:
            fail(f"history entry {number} lacks {missing}")
        if record["epoch"] != number or isinstance(record["epoch"], bool):
            fail(f"history entry {number} has 'epoch' {record['epoch']!r}; expected {number}")
        for name, value in record.items():
            number_ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                         and math.isfinite(value))
            if name in HISTORY_FIELDS:
                ok = number_ok or (value is None and name in _NULLABLE)
            else:
                ok = number_ok or isinstance(value, (bool, str)) or value is None
            if not ok:
                fail(f"history entry {number}: {name!r} is {value!r}; expected a finite number"
                     + (" or null" if name in _NULLABLE else ""))


def check_optimizer_values(optimizer: Optimizer, fail) -> None:
    """Values a real run can hold (see MAX_GRADIENT): every array finite; Adam's v and
    Adagrad's running sum of g² non-negative and no larger than G² (t·G² for the sum);
    Adam's |m| no larger than G, and m² ≤ c·v, the Cauchy-Schwarz bound of two running means
    of the same gradients (c below)."""
    G, t = MAX_GRADIENT, optimizer.t
    for slot, arrays in optimizer.state.items():
        for key, arr in arrays.items():
            name = f"'optim/{slot}/{key}'"
            if not np.all(np.isfinite(arr)):
                fail(f"{name} contains NaN or inf")
            if slot in ("v", "sum_sq") and arr.size and arr.min() < 0:
                fail(f"{name} has negative values, but it is a mean or sum of squared gradients")
            top = {"m": G, "v": G * G, "sum_sq": t * G * G}.get(slot)
            if top is not None and arr.size and np.max(np.abs(arr)) > top:
                fail(f"{name} reaches {np.max(np.abs(arr)):.3g}, more than gradients below {G:g} "
                     f"can give (at most {top:.3g}); the optimizer state is corrupt")
    if optimizer.name == "adam" and t > 0:
        _check_adam_moments(optimizer, fail)


def _check_adam_moments(optimizer: Optimizer, fail) -> None:
    """m = (1-β1) Σ β1^(t-i) g_i and v = (1-β2) Σ β2^(t-i) g_i², so by Cauchy-Schwarz
    m² ≤ (1-β1)²/(1-β2) · Σ_{j<t} (β1²/β2)^j · v. A v far too small for its m (v = 0 beside
    m ≠ 0, say) cannot come from any sequence of gradients."""
    b1, b2, t = optimizer.beta1, optimizer.beta2, optimizer.t
    if b2 <= 0 or b1 * b1 >= b2:
        return  # the sum has no useful bound; the checks above still hold
    r = b1 * b1 / b2
    c = (1 - b1) ** 2 / (1 - b2) * (1 - r ** min(t, 10**6)) / (1 - r)
    for key, m in optimizer.state["m"].items():
        m64, v64 = m.astype(np.float64), optimizer.state["v"][key].astype(np.float64)
        # 1 % and 1e-30 of slack for the rounding of float32 running means
        if np.any(m64 * m64 > 1.01 * c * v64 + 1e-30):
            fail(f"'optim/m/{key}' and 'optim/v/{key}' disagree: m² exceeds {c:.3g}·v somewhere, "
                 "which no sequence of gradients gives; the optimizer state is corrupt")


def restore_rng(state, fail) -> np.random.Generator:
    """A Generator whose bit generator is in the saved state (PCG64 unless another was used).

    numpy checks little of a state it is given (a Mersenne Twister position beyond 624 crashes
    the process), so the state must first have exactly the form of a fresh generator's own.
    """
    names = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")
    if not isinstance(state, dict) or state.get("bit_generator") not in names:
        fail(f"'rng_state' must be a bit generator state with 'bit_generator' one of {list(names)}")
    bit_generator = getattr(np.random, state["bit_generator"])()
    problem = _state_mismatch(state, bit_generator.state, "rng_state")
    if problem is None and state["bit_generator"] == "MT19937" and not any(state["state"]["key"]):
        problem = "an all-zero Mersenne Twister key (it would draw zeros forever)"
    if problem is not None:
        fail(f"'rng_state' cannot be restored: {problem}")
    try:
        bit_generator.state = state
    except (ValueError, TypeError, KeyError, OverflowError, IndexError) as exc:
        fail(f"'rng_state' cannot be restored: {exc}")
    return np.random.Generator(bit_generator)


_RNG_INT_MAX = {"pos": 624, "buffer_pos": 4, "has_uint32": 1, "uinteger": 2**32 - 1}


def _state_mismatch(saved, template, where: str) -> str | None:
    """Why ``saved`` lacks the form of a fresh bit generator's ``template`` state, or None: the
    same keys, each array a list of as many integers within its dtype, each integer in range."""
    if isinstance(template, dict):
        if not isinstance(saved, dict) or saved.keys() != template.keys():
            return f"{where} must be an object with the keys {sorted(template)}"
        return next((p for key in template
                     if (p := _state_mismatch(saved[key], template[key], f"{where}.{key}"))),
                    None)
    if isinstance(template, str):
        return None if saved == template else f"{where} must be {template!r}"
    if isinstance(template, np.ndarray):
        top = int(np.iinfo(template.dtype).max)
        if (isinstance(saved, list) and len(saved) == template.size
                and all(_int_in(v, top) for v in saved)):
            return None
        return f"{where} must be a list of {template.size} integers in [0, {top}]"
    top = _RNG_INT_MAX.get(where.rpartition(".")[2], 2**128 - 1)
    if _int_in(saved, top):
        return None
    return f"{where} must be an integer in [0, {top}], got {saved!r}"


def _int_in(value, top: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top
