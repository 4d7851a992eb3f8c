"""The fast training step computes what the readable one computes.

tinyvae/speed/step.py rearranges vae.loss_and_grads for speed (one flat buffer, fused heads,
no gradient for the images, preallocated buffers, the Bernoulli loss from one
exponential, Adam in the folded form of Kingma & Ba). Each test holds one of those
rearrangements to the reference: the same loss, the same gradient, the same parameters
after several optimizer steps, the same optimizer state, to float32 precision (and to
~1e-12 in float64, where rounding cannot hide a real difference).
"""

import itertools
import re
import tracemalloc

import numpy as np
import pytest

from tinyvae import optim, vae
from tinyvae.config import VAEConfig, init_params, param_shapes
from tinyvae.lab.storage.optimizer_state import load_checked
from tinyvae.losses import LIKELIHOODS
from tinyvae.speed.step import FastStep, make_step
from tinyvae.train import ReferenceStep

# The tolerance of each comparison, by dtype: float32 carries ~7 digits, float64 ~16.
GRAD_TOL = {np.float32: 1e-5, np.float64: 1e-12}
PARAM_RTOL = {np.float32: 1e-5, np.float64: 1e-10}

CASES = list(itertools.product(LIKELIHOODS, ("relu", "tanh"), ((7,), (6, 5))))
CASE_IDS = [f"{lik}-{act}-{len(hidden)}layer" for lik, act, hidden in CASES]


def rel_error(a, b) -> float:
    """max |a − b| / max(|a| + |b|), both maxima over the array (see tinyvae/gradcheck.py)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a) + np.abs(b))))


def problem(likelihood="bernoulli", activation="relu", hidden=(7,), dtype=np.float64, seed=0,
            batch=5, input_dim=11, latent_dim=3):
    """A small odd-shaped model with random parameters, and a function drawing batches."""
    config = VAEConfig(input_dim=input_dim, hidden_dims=hidden, latent_dim=latent_dim,
                           activation=activation, likelihood=likelihood)
    rng = np.random.default_rng(seed)
    params = init_params(config, rng, dtype=dtype)

    def batch_of(n=batch):
        x = rng.random((n, input_dim)).astype(dtype)  # (B, D) in [0, 1]
        eps = rng.standard_normal((n, latent_dim)).astype(dtype)  # (B, Z)
        return x, eps

    return config, params, batch_of


def copy(params):
    return {key: value.copy() for key, value in params.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("likelihood, activation, hidden", CASES, ids=CASE_IDS)
def test_loss_and_gradients_equal_the_reference(likelihood, activation, hidden, dtype):
    config, params, batch_of = problem(likelihood, activation, hidden, dtype)
    x, eps = batch_of()
    _, grads, stats = vae.loss_and_grads(params, x, eps, config, beta=0.7)
    fast = FastStep(config, params, optim.SGD(lr=0.1), max_batch=8)
    fast_stats = fast.step(x, eps, beta=0.7)
    for name in ("loss", "recon", "kl"):
        assert fast_stats[name] == pytest.approx(stats[name], rel=GRAD_TOL[dtype],
                                                 abs=GRAD_TOL[dtype])
    assert fast.grads.keys() == grads.keys()
    for key in grads:
        assert fast.grads[key].dtype == dtype
        assert rel_error(fast.grads[key], grads[key]) < GRAD_TOL[dtype], key


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("likelihood, activation, hidden", CASES, ids=CASE_IDS)
def test_one_sgd_step_moves_the_parameters_by_the_reference_gradient(likelihood, activation, hidden,
                                                                      dtype):
    # With SGD(lr=1) and no momentum the step is θ ← θ − g: the change IS the gradient.
    config, params, batch_of = problem(likelihood, activation, hidden, dtype)
    x, eps = batch_of()
    _, grads, _ = vae.loss_and_grads(params, x, eps, config)
    fast = FastStep(config, params, optim.SGD(lr=1.0), max_batch=5)
    fast.step(x, eps)
    for key in params:
        change = params[key] - fast.params[key]
        # θ − (θ − g) recovers g only up to the rounding of θ itself
        atol = 4 * np.finfo(dtype).eps * np.max(np.abs(params[key]))
        np.testing.assert_allclose(change, grads[key], rtol=GRAD_TOL[dtype], atol=atol, err_msg=key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("likelihood, activation, hidden", CASES, ids=CASE_IDS)
def test_several_adam_steps_give_the_parameters_of_optim_adam(likelihood, activation, hidden,
                                                               dtype):
    config, params, batch_of = problem(likelihood, activation, hidden, dtype)
    reference = ReferenceStep(config, copy(params), optim.Adam(lr=1e-2))
    fast = FastStep(config, params, optim.Adam(lr=1e-2), max_batch=5)
    for step in range(6):
        x, eps = batch_of()
        beta = 0.2 * step  # a KL warm-up changes β from step to step
        ref_stats = reference.step(x, eps, beta)
        fast_stats = fast.step(x, eps, beta)
        assert fast_stats["loss"] == pytest.approx(ref_stats["loss"], rel=PARAM_RTOL[dtype])
    for key in params:
        np.testing.assert_allclose(fast.params[key], reference.params[key], rtol=PARAM_RTOL[dtype],
                                   atol=PARAM_RTOL[dtype] * 1e-2, err_msg=key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_smaller_last_batch_uses_the_first_rows_of_the_buffers(dtype):
    config, params, batch_of = problem(hidden=(6, 5), dtype=dtype)
    reference = ReferenceStep(config, copy(params), optim.Adam(lr=1e-2))
    fast = FastStep(config, params, optim.Adam(lr=1e-2), max_batch=8)
    for n in (8, 3, 8, 1, 3):  # full, short, full again: nothing of a short batch may linger
        x, eps = batch_of(n)
        ref_stats = reference.step(x, eps)
        fast_stats = fast.step(x, eps)
        for name in ("loss", "recon", "kl"):
            assert fast_stats[name] == pytest.approx(ref_stats[name], rel=PARAM_RTOL[dtype])
    for key in params:
        np.testing.assert_allclose(fast.params[key], reference.params[key], rtol=PARAM_RTOL[dtype],
                                   atol=PARAM_RTOL[dtype] * 1e-2, err_msg=key)


@pytest.mark.parametrize("make_optimizer", [
    lambda: optim.SGD(lr=0.05, momentum=0.9),
    lambda: optim.SGD(lr=0.05),
    lambda: optim.Adagrad(lr=0.05),
    lambda: optim.Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6),
    lambda: optim.Adam(lr=0.01, clip_norm=0.05),
], ids=["sgd-momentum", "sgd", "adagrad", "adam-hparams", "adam-clipped"])
def test_every_optimizer_takes_the_steps_of_its_reference(make_optimizer):
    config, params, batch_of = problem(likelihood="gaussian-learned-variance", hidden=(6, 5))
    reference = ReferenceStep(config, copy(params), make_optimizer())
    fast = FastStep(config, params, make_optimizer(), max_batch=5)
    for _ in range(5):
        x, eps = batch_of()
        reference.step(x, eps)
        fast.step(x, eps)
    if reference.optimizer.clip_norm is not None:
        assert reference.last_grad_norm > reference.optimizer.clip_norm  # the test did clip
        assert fast.last_grad_norm == pytest.approx(reference.last_grad_norm, rel=1e-12)
    for key in params:
        np.testing.assert_allclose(fast.params[key], reference.params[key], rtol=1e-10, atol=1e-13,
                                   err_msg=key)
    ref_state, fast_state = reference.optimizer_state_dict(), fast.optimizer_state_dict()
    assert list(fast_state) == list(ref_state)
    for key in ref_state:
        np.testing.assert_allclose(fast_state[key], ref_state[key], rtol=1e-10, atol=1e-14,
                                   err_msg=key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizer_state_has_exactly_the_format_of_optim_adam(dtype):
    config, params, batch_of = problem(likelihood="gaussian-learned-variance", dtype=dtype)
    reference = ReferenceStep(config, copy(params), optim.Adam())
    fast = FastStep(config, params, optim.Adam(), max_batch=5)
    # before the first step, optim.Adam has no arrays yet: only the step counter
    assert list(fast.optimizer_state_dict()) == list(reference.optimizer_state_dict()) == ["step"]
    x, eps = batch_of()
    reference.step(x, eps)
    fast.step(x, eps)
    ref_state, fast_state = reference.optimizer_state_dict(), fast.optimizer_state_dict()
    assert list(fast_state) == list(ref_state)
    for key, arr in ref_state.items():
        assert fast_state[key].dtype == arr.dtype and fast_state[key].shape == arr.shape, key
        assert fast_state[key].flags.c_contiguous, key
    assert fast_state["step"].shape == () and int(fast_state["step"]) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizer_state_moves_between_the_paths_and_training_resumes_on_either(dtype):
    config, params, batch_of = problem(hidden=(6, 5), dtype=dtype)
    batches = [batch_of() for _ in range(6)]

    # an uninterrupted reference run of six steps
    straight = ReferenceStep(config, copy(params), optim.Adam(lr=1e-2))
    for x, eps in batches:
        straight.step(x, eps)

    # three fast steps, then the reference path resumes from the fast path's state ...
    fast = FastStep(config, params, optim.Adam(lr=1e-2), max_batch=5)
    for x, eps in batches[:3]:
        fast.step(x, eps)
    resumed = ReferenceStep(config, copy(fast.params), optim.Adam(lr=1e-2))
    resumed.load_optimizer_state_dict(fast.optimizer_state_dict())
    for x, eps in batches[3:5]:
        resumed.step(x, eps)
    # ... and hands over to a fast step again, built from an optimizer that already has state
    handed_over = FastStep(config, copy(resumed.params), resumed.optimizer, max_batch=5)
    x, eps = batches[5]
    handed_over.step(x, eps)

    for key in params:
        np.testing.assert_allclose(handed_over.params[key], straight.params[key],
                                   rtol=PARAM_RTOL[dtype], atol=PARAM_RTOL[dtype] * 1e-2,
                                   err_msg=key)
    assert int(handed_over.optimizer_state_dict()["step"]) == 6


def test_the_optimizer_object_holds_the_live_state():
    # No hand-over step: the optimizer passed in IS the state, at every moment.
    config, params, batch_of = problem(dtype=np.float32)
    optimizer = optim.Adam()
    fast = FastStep(config, params, optimizer, max_batch=5)
    assert list(optimizer.state_dict()) == ["step"]  # before any step: nothing but the step counter
    for _ in range(2):
        fast.step(*batch_of())
    state, live = fast.optimizer_state_dict(), optimizer.state_dict()
    assert list(live) == list(state)
    for key in state:
        assert np.array_equal(live[key], state[key]), key


def test_loading_a_state_restores_it_exactly():
    config, params, batch_of = problem(dtype=np.float32)
    source = FastStep(config, params, optim.Adam(), max_batch=5)
    for _ in range(3):
        source.step(*batch_of())
    state = source.optimizer_state_dict()
    target = FastStep(config, params, optim.Adam(), max_batch=5)
    target.load_optimizer_state_dict(state)
    again = target.optimizer_state_dict()
    assert list(again) == list(state)
    for key in state:
        assert np.array_equal(again[key], state[key]), key
    # a state of step 0 with no arrays empties the moments again
    target.load_optimizer_state_dict({"step": np.array(0, dtype=np.int64)})
    assert list(target.optimizer_state_dict()) == ["step"]
    assert not np.any(target._slots["m"]) and not np.any(target._slots["v"])


def test_a_saved_state_that_does_not_fit_the_fast_step_is_refused_where_checkpoints_are_read():
    config, params, batch_of = problem(dtype=np.float32)
    fast = FastStep(config, params, optim.Adam(), max_batch=5)
    fast.step(*batch_of())
    state = fast.optimizer_state_dict()
    wrong_shape = dict(state, **{"m/encoder.W0": np.zeros((2, 2), np.float32)})
    with pytest.raises(ValueError, match="encoder.W0"):
        load_checked(fast.optimizer, wrong_shape, fast.params)
    wrong_dtype = {key: (arr.astype(np.float64) if key != "step" else arr)
                   for key, arr in state.items()}
    with pytest.raises(ValueError, match="dtype"):
        load_checked(fast.optimizer, wrong_dtype, fast.params)


def test_same_seed_gives_the_same_parameters_bit_for_bit():
    def run():
        config, params, batch_of = problem(hidden=(6, 5), dtype=np.float32, seed=3)
        fast = FastStep(config, params, optim.Adam(), max_batch=5)
        for n in (5, 5, 2):
            fast.step(*batch_of(n))
        return fast

    one, again = run(), run()
    for key in one.params:
        assert np.array_equal(one.params[key], again.params[key]), key
    state, state_again = one.optimizer_state_dict(), again.optimizer_state_dict()
    for key in state:
        assert np.array_equal(state[key], state_again[key]), key


def test_params_are_views_of_one_flat_buffer_with_fused_heads():
    config, params, _ = problem(likelihood="gaussian-learned-variance", hidden=(6, 5))
    fast = FastStep(config, params, optim.Adam(), max_batch=5)
    assert list(fast.params) == list(param_shapes(config))
    assert fast.n_params == sum(p.size for p in params.values())
    for key, view in fast.params.items():
        assert view.shape == params[key].shape and np.array_equal(view, params[key])
        assert np.shares_memory(view, fast._theta), key
        assert view is not params[key] and not np.shares_memory(view, params[key])
    # W_mu and W_logvar are the two column halves of one (H, 2Z) matrix
    head = fast.W["encoder.W_head"]
    assert np.shares_memory(fast.params["encoder.W_mu"], head)
    assert np.array_equal(head, np.hstack([params["encoder.W_mu"], params["encoder.W_logvar"]]))
    both_biases = np.concatenate([params["decoder.b_out"], params["decoder.b_logvar"]])
    assert np.array_equal(fast.W["decoder.b_head"], both_biases)
    # writing through a key writes the buffer the step reads
    fast.params["encoder.b_logvar"][...] = 0.5
    assert np.all(fast.W["encoder.b_head"][config.latent_dim:] == 0.5)


def test_a_step_allocates_no_batch_sized_arrays():
    # Trick 4: after the first step the buffers are reused. The (B, H) and (B, D) arrays here
    # are 64 KB and 200 KB; what may remain are NumPy's own iteration buffers (at most
    # 8192 elements, 32 KB, for a broadcast bias add) and a few small Python objects.
    config = VAEConfig(input_dim=784, hidden_dims=(256,), latent_dim=8)
    rng = np.random.default_rng(0)
    fast = FastStep(config, init_params(config, rng, np.float32), optim.Adam(), max_batch=64)
    x = rng.random((64, 784), dtype=np.float32)
    eps = rng.standard_normal((64, 8), dtype=np.float32)
    fast.step(x, eps)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        fast.step(x, eps)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    smallest_batch_array = 64 * 256 * 4  # one (B, H) float32 array
    assert peak - before < smallest_batch_array, \
        f"a step allocated up to {peak - before} bytes at once"
    assert after - before < 4096, "a step keeps memory it did not need"


def test_bad_inputs_are_refused_with_a_clear_message():
    config, params, batch_of = problem()
    fast = FastStep(config, params, optim.Adam(), max_batch=5)
    x, eps = batch_of()
    with pytest.raises(ValueError, match="max_batch"):
        fast.step(np.vstack([x, x]), np.vstack([eps, eps]))
    with pytest.raises(ValueError, match=r"x must have shape"):
        fast.step(x[:, :-1], eps)
    with pytest.raises(ValueError, match="eps must have shape"):
        fast.step(x, eps[:, :-1])
    with pytest.raises(ValueError, match="max_batch"):
        FastStep(config, params, optim.Adam(), max_batch=0)
    with pytest.raises(ValueError, match="encoder.W0"):
        FastStep(config, dict(params, **{"encoder.W0": params["encoder.W0"][:-1]}), optim.Adam(),
                 max_batch=5)

    class Lion(optim.Optimizer):
        name = "lion"
        slots = ("m",)

    with pytest.raises(ValueError, match="ReferenceStep"):
        FastStep(config, params, Lion(lr=1e-3), max_batch=5)


def test_make_step_switches_between_the_two_paths():
    config, params, batch_of = problem()
    x, eps = batch_of()
    fast = make_step("fast", config, copy(params), optim.Adam(), max_batch=5)
    reference = make_step("reference", config, copy(params), optim.Adam(), max_batch=5)
    assert isinstance(fast, FastStep) and isinstance(reference, ReferenceStep)
    assert fast.step(x, eps).keys() == reference.step(x, eps).keys() == {"loss", "recon", "kl"}
    with pytest.raises(ValueError, match="'fast' or 'reference'"):
        make_step("quick", config, params, optim.Adam(), max_batch=5)


OPTIMIZERS_FOR_HALVES = {
    "adam": lambda: optim.Adam(lr=1e-2),
    "adam-clipped": lambda: optim.Adam(lr=1e-2, clip_norm=0.5),
    "adagrad": lambda: optim.Adagrad(lr=1e-2),
    "sgd": lambda: optim.SGD(lr=1e-2),
    "sgd-momentum": lambda: optim.SGD(lr=1e-2, momentum=0.9),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS_FOR_HALVES)
def test_the_update_in_two_halves_is_the_same_bit_for_bit(name, dtype):
    # speed/halves.py: the optimizer's passes over two halves at once, on two threads,
    # compute every number exactly as one thread does. P is odd and not a multiple of the
    # split's alignment, so the halves are unequal.
    config, params, batch_of = problem("bernoulli", "tanh", (37, 23), dtype, input_dim=29,
                                       latent_dim=4)
    steps = {threads: FastStep(config, params, OPTIMIZERS_FOR_HALVES[name](), max_batch=6,
                               threads=threads)
             for threads in (1, 2)}
    assert steps[1].n_params % 2 == 1
    for _ in range(7):
        x, eps = batch_of(6)
        stats = {threads: step.step(x, eps) for threads, step in steps.items()}
        assert stats[1] == stats[2]
    for key in params:
        np.testing.assert_array_equal(steps[2].params[key], steps[1].params[key], err_msg=key)
    one, two = steps[1].optimizer_state_dict(), steps[2].optimizer_state_dict()
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_array_equal(two[key], one[key], err_msg=key)
    # and the update did move every block of parameters, the worker's half included
    for key in params:
        assert not np.array_equal(steps[2].params[key], params[key]), key


def test_threads_other_than_one_or_two_are_refused():
    config, params, _ = problem()
    for bad in (0, 3, -1, 1.5, 2.0, True):
        with pytest.raises(ValueError, match="threads must be 1 or 2"):
            FastStep(config, params, optim.Adam(), max_batch=4, threads=bad)


def test_an_error_in_the_second_half_reaches_the_caller_and_the_worker_goes_on():
    from tinyvae.speed import halves

    def update(a, value):
        if a[0] == -1:  # only the second half starts with -1
            raise FloatingPointError("second half")
        a += value

    arrays = (np.concatenate([np.zeros(64), -np.ones(64)]),)
    with pytest.raises(FloatingPointError, match="second half"):
        halves.run(update, arrays, 1.0, threads=2)
    assert np.all(arrays[0][:64] == 1.0)  # the first half was done all the same
    ok = np.zeros(100)
    halves.run(update, (ok,), 2.0, threads=2)
    assert np.all(ok == 2.0)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1.5, -0.25])
def test_the_fast_step_refuses_what_the_reference_refuses_before_any_update(likelihood, bad):
    config, params, batch_of = problem(likelihood)
    x, eps = batch_of()
    x[2, 3] = bad
    fast = FastStep(config, params, optim.Adam(), max_batch=8)
    try:
        vae.loss_and_grads(params, x, eps, config)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc)[:20])):
            fast.step(x, eps)
        for key in params:  # refused before the update: nothing moved
            np.testing.assert_array_equal(fast.params[key], params[key])
        assert fast.optimizer.t == 0
    else:  # the Gaussian takes finite pixels outside [0, 1]: so does the fast step
        assert likelihood == "gaussian" and np.isfinite(bad)
        assert np.isfinite(fast.step(x, eps)["loss"])


def test_the_update_uses_a_second_thread_only_beside_a_one_thread_blas(monkeypatch):
    from tinyvae.speed import halves
    monkeypatch.setattr(halves, "available_cores", lambda: 2)
    for blas, expected in ((1, 2), (2, 1), (None, 1)):
        monkeypatch.setattr(halves, "get_blas_threads", lambda blas=blas: blas)
        assert halves.default_threads() == expected
    monkeypatch.setattr(halves, "available_cores", lambda: 1)
    monkeypatch.setattr(halves, "get_blas_threads", lambda: 1)
    assert halves.default_threads() == 1


def test_an_interrupt_in_this_half_returns_only_once_the_other_half_is_done():
    # Ctrl-C (or SIGTERM, which training turns into one) during this thread's half: run()
    # re-raises it only after the second core has finished writing its half.
    import time

    from tinyvae.speed import halves
    finished = []

    def update(a):
        if a[0] == 1:  # the second half
            time.sleep(0.2)
            a += 1
            finished.append(True)
        else:
            raise KeyboardInterrupt

    a = np.concatenate([np.zeros(64), np.ones(64)])
    with pytest.raises(KeyboardInterrupt):
        halves.run(update, (a,), threads=2)
    assert finished == [True] and np.all(a[64:] == 2)
    b = np.concatenate([np.full(64, 5.0), np.ones(64)])
    halves.run(lambda arr: np.add(arr, 0.5, out=arr) if arr[0] == 5 else update(arr), (b,),
               threads=2)
    assert np.all(b[:64] == 5.5) and np.all(b[64:] == 2) and finished == [True, True]
