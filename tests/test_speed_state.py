"""One owner of a run's state: the fast step's optimizer object is never stale.

FastStep keeps the parameters and the optimizer's moments in flat buffers (speed/layout.py),
and the optimizer object passed in is the live view of that state, not a copy beside it: its
`.state[slot][key]` are views of the flat slot buffers, its `.t` is the step counter, and its
`.last_grad_norm` is the step's. So `optimizer.state_dict()` is always what a checkpoint
needs, and a state loaded into it is the state the next step uses.
"""

import numpy as np
import pytest

from tinyvae import optim
from tinyvae.config import VAEConfig, init_params
from tinyvae.speed.step import FastStep
from tinyvae.train import ReferenceStep


def problem(dtype=np.float32, seed=0):
    config = VAEConfig(input_dim=11, hidden_dims=(6, 5), latent_dim=3)
    rng = np.random.default_rng(seed)
    params = init_params(config, rng, dtype=dtype)

    def batch_of(n=5):
        return rng.random((n, 11)).astype(dtype), rng.standard_normal((n, 3)).astype(dtype)

    return config, params, batch_of


def test_the_optimizers_state_is_views_of_the_flat_buffers_and_its_t_is_the_counter():
    config, params, batch_of = problem()
    optimizer = optim.Adam()
    fast = FastStep(config, params, optimizer, max_batch=5)
    assert optimizer.state == {"m": {}, "v": {}} and optimizer.t == 0  # like a fresh optim.Adam
    for _ in range(3):
        fast.step(*batch_of())
    assert optimizer.t == fast.t == 3
    for slot in ("m", "v"):
        assert list(optimizer.state[slot]) == list(fast.params)
        for key, arr in optimizer.state[slot].items():
            assert np.shares_memory(arr, fast._slots[slot]), (slot, key)
    assert np.any(fast._slots["m"])  # the moments moved, and the optimizer sees them move


def test_the_step_records_the_gradient_norm_on_the_optimizer_when_clipping():
    config, params, batch_of = problem(dtype=np.float64)
    reference = ReferenceStep(config, {k: v.copy() for k, v in params.items()},
                              optim.Adam(clip_norm=0.05))
    fast = FastStep(config, params, optim.Adam(clip_norm=0.05), max_batch=5)
    x, eps = batch_of()
    reference.step(x, eps)
    fast.step(x, eps)
    assert fast.optimizer.last_grad_norm > 0.05  # it did clip
    assert fast.optimizer.last_grad_norm == pytest.approx(reference.optimizer.last_grad_norm,
                                                          rel=1e-12)


def test_a_state_loaded_into_the_optimizer_object_is_what_the_next_step_uses():
    # Whoever loads the optimizer (a checkpoint, the lab's runner) may do it on the object
    # itself: the fast step takes the loaded arrays into its buffers before its next step.
    config, params, batch_of = problem()
    batches = [batch_of() for _ in range(4)]
    straight = FastStep(config, params, optim.Adam(lr=1e-2), max_batch=5)
    for x, eps in batches[:2]:
        straight.step(x, eps)
    saved_params, saved_state = ({k: v.copy() for k, v in straight.params.items()},
                                 straight.optimizer_state_dict())
    for x, eps in batches[2:]:
        straight.step(x, eps)

    optimizer = optim.Adam(lr=1e-2)
    resumed = FastStep(config, saved_params, optimizer, max_batch=5)
    optimizer.load_state_dict(saved_state)  # behind the step's back
    for x, eps in batches[2:]:
        resumed.step(x, eps)
    for key in params:
        assert np.array_equal(resumed.params[key], straight.params[key]), key
    assert optimizer.t == 4 \
        and np.shares_memory(optimizer.state["m"]["encoder.W0"], resumed._slots["m"])


def test_load_optimizer_state_dict_rebinds_the_optimizer_to_the_buffers():
    config, params, batch_of = problem()
    source = FastStep(config, params, optim.Adam(), max_batch=5)
    source.step(*batch_of())
    target = FastStep(config, params, optim.Adam(), max_batch=5)
    target.load_optimizer_state_dict(source.optimizer_state_dict())
    assert target.optimizer.t == 1
    for slot in ("m", "v"):
        for key, arr in target.optimizer.state[slot].items():
            assert np.shares_memory(arr, target._slots[slot]), (slot, key)
            assert np.array_equal(arr, source.optimizer.state[slot][key]), (slot, key)


def test_a_stepped_optimizer_handed_to_a_new_step_is_taken_over_not_copied_beside():
    config, params, batch_of = problem()
    optimizer = optim.Adagrad(lr=0.05)
    ReferenceStep(config, {k: v.copy() for k, v in params.items()}, optimizer).step(*batch_of())
    before = optimizer.state_dict()
    fast = FastStep(config, params, optimizer, max_batch=5)
    assert fast.t == 1
    for key, arr in optimizer.state["sum_sq"].items():
        assert np.shares_memory(arr, fast._slots["sum_sq"]) \
            and np.array_equal(arr, before[f"sum_sq/{key}"])
