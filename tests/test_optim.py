"""Tests of tinyvae.optim: each update equation on numbers worked by hand, in-place updates,
exact checkpoint round trips, clipping, validation, and Adam training a small VAE."""

import math

import numpy as np
import pytest

from tinyvae.lab.storage.optimizer_state import load_checked
from tinyvae.optim import SGD, Adagrad, Adam, clip_by_global_norm, make_optimizer


def one_param(*values, dtype=np.float64):
    return {"w": np.array(values, dtype=dtype)}


def grad(*values, dtype=np.float64):
    return {"w": np.array(values, dtype=dtype)}


def all_optimizers():
    return [SGD(lr=0.1), SGD(lr=0.1, momentum=0.9), Adagrad(lr=0.1), Adam(lr=0.01)]


# ---- each update equation, on numbers worked out by hand ----


def test_sgd_step_is_theta_minus_lr_times_g():
    params = one_param(1.0, -2.0)
    SGD(lr=0.1).step(params, grad(0.5, -3.0))
    # θ − η g = (1 − 0.1·0.5, −2 − 0.1·(−3)) = (0.95, −1.7)
    np.testing.assert_allclose(params["w"], [0.95, -1.7], rtol=1e-15)


def test_sgd_momentum_two_steps_follow_the_velocity_equations():
    params = one_param(1.0, -2.0)
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step(params, grad(0.5, 0.25))
    # v = 0.9·0 − 0.1·(0.5, 0.25) = (−0.05, −0.025);  θ = (0.95, −2.025)
    np.testing.assert_allclose(opt.state_dict()["velocity/w"], [-0.05, -0.025], rtol=1e-14)
    np.testing.assert_allclose(params["w"], [0.95, -2.025], rtol=1e-14)
    opt.step(params, grad(1.0, -1.0))
    # v = 0.9·(−0.05, −0.025) − 0.1·(1, −1) = (−0.145, 0.0775);  θ = (0.805, −1.9475)
    np.testing.assert_allclose(opt.state_dict()["velocity/w"], [-0.145, 0.0775], rtol=1e-14)
    np.testing.assert_allclose(params["w"], [0.805, -1.9475], rtol=1e-14)


def test_adagrad_two_steps_follow_the_sum_of_squares_equations():
    params = one_param(1.0, -1.0)
    opt = Adagrad(lr=0.1, eps=1e-8)
    opt.step(params, grad(0.5, -2.0))
    # G = (0.25, 4);  θ = (1 − 0.1·0.5/(0.5 + ε), −1 − 0.1·(−2)/(2 + ε))
    first = [1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -1.0 + 0.1 * 2.0 / (2.0 + 1e-8)]
    np.testing.assert_allclose(opt.state_dict()["sum_sq/w"], [0.25, 4.0], rtol=1e-15)
    np.testing.assert_allclose(params["w"], first, rtol=1e-14)
    opt.step(params, grad(0.5, 1.0))
    # G = (0.25 + 0.25, 4 + 1) = (0.5, 5);  θ −= 0.1·(0.5/(√0.5 + ε), 1/(√5 + ε))
    second = [first[0] - 0.1 * 0.5 / (math.sqrt(0.5) + 1e-8),
              first[1] - 0.1 * 1.0 / (math.sqrt(5.0) + 1e-8)]
    np.testing.assert_allclose(opt.state_dict()["sum_sq/w"], [0.5, 5.0], rtol=1e-15)
    np.testing.assert_allclose(params["w"], second, rtol=1e-14)
    # without ε that is ≈ (0.9 − 0.0707107, −0.9 − 0.0447214)
    np.testing.assert_allclose(params["w"], [0.8292893, -0.9447214], rtol=1e-6)


def test_adam_two_steps_follow_the_moment_and_bias_correction_equations():
    params = one_param(1.0)
    opt = Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step(params, grad(0.5))
    # m = 0.1·0.5 = 0.05;  v = 0.001·0.25 = 0.00025;  m̂ = 0.05/0.1 = 0.5;  v̂ = 0.00025/0.001 = 0.25
    # θ = 1 − 0.01·0.5/(√0.25 + ε)
    first = 1.0 - 0.01 * 0.5 / (0.5 + 1e-8)
    state = opt.state_dict()
    np.testing.assert_allclose(state["m/w"], [0.05], rtol=1e-14)
    np.testing.assert_allclose(state["v/w"], [0.00025], rtol=1e-14)
    np.testing.assert_allclose(params["w"], [first], rtol=1e-14)
    opt.step(params, grad(-1.0))
    # m = 0.9·0.05 + 0.1·(−1) = −0.055;  v = 0.999·0.00025 + 0.001·1 = 0.00124975
    # m̂ = −0.055/(1 − 0.81) = −0.055/0.19;  v̂ = 0.00124975/(1 − 0.998001) = 0.00124975/0.001999
    m_hat, v_hat = -0.055 / 0.19, 0.00124975 / 0.001999
    second = first - 0.01 * m_hat / (math.sqrt(v_hat) + 1e-8)
    state = opt.state_dict()
    np.testing.assert_allclose(state["m/w"], [-0.055], rtol=1e-13)
    np.testing.assert_allclose(state["v/w"], [0.00124975], rtol=1e-13)
    np.testing.assert_allclose(params["w"], [second], rtol=1e-13)
    assert int(state["step"]) == 2
    # the step went up, by ≈ 0.01 · 0.28947 / 0.79069 ≈ 0.003661
    np.testing.assert_allclose(second - first, 0.003661, rtol=1e-3)


def test_adam_first_step_moves_each_coordinate_by_lr_whatever_the_gradient_scale():
    # bias correction makes m̂ = g and v̂ = g² on step 1, so the step is η·g/|g| = η·sign(g)
    params = one_param(0.0, 0.0, 0.0)
    Adam(lr=0.001, eps=1e-12).step(params, grad(1e-4, -3.0, 250.0))
    np.testing.assert_allclose(params["w"], [-0.001, 0.001, -0.001], rtol=1e-7)


# ---- in place, dtype ----


@pytest.mark.parametrize("opt", all_optimizers(), ids=repr)
def test_step_updates_the_same_arrays_in_place(opt):
    params = {"a": np.ones((2, 3)), "b": np.zeros(3)}
    arrays = dict(params)  # the objects a training loop or a fast path may hold
    view = params["a"][0]  # even a view sees the update
    for _ in range(2):
        opt.step(params, {"a": np.full((2, 3), 0.5), "b": np.ones(3)})
    assert all(params[key] is arrays[key] for key in params)
    assert np.all(params["a"] < 1.0) and np.all(params["b"] < 0.0)
    assert np.all(view == params["a"][0])


@pytest.mark.parametrize("opt", all_optimizers(), ids=repr)
def test_step_does_not_modify_the_gradients(opt):
    params, g = one_param(1.0, 2.0), grad(0.3, -0.4)
    opt.step(params, g)
    np.testing.assert_array_equal(g["w"], [0.3, -0.4])


@pytest.mark.parametrize("opt", all_optimizers(), ids=repr)
def test_float32_params_and_state_stay_float32(opt):
    params = one_param(1.0, -1.0, dtype=np.float32)
    for _ in range(3):
        opt.step(params, grad(0.1, 0.2, dtype=np.float32))
    assert params["w"].dtype == np.float32
    state = opt.state_dict()
    assert state["step"].dtype == np.int64 and state["step"].shape == ()
    assert all(arr.dtype == np.float32 for key, arr in state.items() if key != "step")


# ---- state: save, restore, continue bit for bit ----


def random_problem(rng, dtype):
    params = {"enc.W": rng.standard_normal((3, 4)).astype(dtype),
              "enc.b": rng.standard_normal(4).astype(dtype)}
    grads = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
             for _ in range(10)]
    return params, grads


@pytest.mark.parametrize("name,kw", [("sgd", {"momentum": 0.9}), ("sgd", {}), ("adagrad", {}),
                                     ("adam", {"clip_norm": 1.0})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_round_trip_through_npz_continues_bit_for_bit(tmp_path, name, kw, dtype):
    rng = np.random.default_rng(0)
    params, grads = random_problem(rng, dtype)
    resumed_params = {k: v.copy() for k, v in params.items()}
    uninterrupted = make_optimizer(name, 0.05, **kw)
    first_half = make_optimizer(name, 0.05, **kw)
    for g in grads[:5]:
        uninterrupted.step(params, g)
        first_half.step(resumed_params, g)
    path = tmp_path / "opt.npz"
    np.savez(path, **first_half.state_dict())
    with np.load(path, allow_pickle=False) as f:
        saved = {key: f[key] for key in f.files}
    resumed = make_optimizer(name, 0.05, **kw)
    resumed.load_state_dict(saved)
    for g in grads[5:]:
        uninterrupted.step(params, g)
        resumed.step(resumed_params, g)
    for key in params:
        assert params[key].tobytes() == resumed_params[key].tobytes()
    final_a, final_b = uninterrupted.state_dict(), resumed.state_dict()
    assert final_a.keys() == final_b.keys()
    assert all(final_a[key].tobytes() == final_b[key].tobytes() for key in final_a)


def test_state_dict_is_a_snapshot_not_a_live_view():
    params, opt = one_param(1.0), Adam()
    opt.step(params, grad(1.0))
    state = opt.state_dict()
    m_before = state["m/w"].copy()
    opt.step(params, grad(1.0))
    np.testing.assert_array_equal(state["m/w"], m_before)


def test_a_saved_state_is_refused_when_a_wrong_shape_naming_the_key():
    opt = Adam()
    opt.step(one_param(1.0, 2.0), grad(1.0, 1.0))
    state = opt.state_dict()
    state["v/w"] = np.zeros(3)
    with pytest.raises(ValueError, match="'w' has shape \\(3,\\)"):
        load_checked(Adam(), state, None)


def test_a_saved_state_is_refused_when_state_that_does_not_fit_the_params():
    opt = Adam()
    opt.step(one_param(1.0, 2.0), grad(1.0, 1.0))
    with pytest.raises(ValueError, match="'w'.*shape"):
        load_checked(Adam(), opt.state_dict(), one_param(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="missing keys \\['b'\\]"):
        load_checked(Adam(), opt.state_dict(), {"w": np.zeros(2), "b": np.zeros(1)})


def test_a_saved_state_is_refused_when_missing_and_unexpected_keys():
    opt = Adam()
    opt.step(one_param(1.0), grad(1.0))
    state = opt.state_dict()
    without_step = {k: v for k, v in state.items() if k != "step"}
    with pytest.raises(ValueError, match="'step'"):
        load_checked(Adam(), without_step, None)
    without_v = {k: v for k, v in state.items() if not k.startswith("v/")}
    with pytest.raises(ValueError, match="'v'"):
        load_checked(Adam(), without_v, None)
    with pytest.raises(ValueError, match="unexpected key 'm/w'"):
        load_checked(SGD(lr=0.1, momentum=0.9), state, None)  # an Adam state into SGD


def test_load_state_dict_leaves_the_optimizer_unchanged_when_it_fails():
    opt = SGD(lr=0.1, momentum=0.9)
    params = one_param(1.0)
    opt.step(params, grad(1.0))
    before = opt.state_dict()
    with pytest.raises(ValueError):
        load_checked(opt, {"step": np.array(7), "velocity/w": np.zeros(5)}, params)
    after = opt.state_dict()
    assert before.keys() == after.keys() \
        and all(np.array_equal(before[k], after[k]) for k in before)


# ---- clipping ----


def test_clip_by_global_norm_scales_all_keys_together():
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}  # joint norm 5
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert norm == 5.0
    np.testing.assert_allclose(clipped["a"], [0.6])
    np.testing.assert_allclose(clipped["b"], [[0.8]])
    np.testing.assert_array_equal(grads["a"], [3.0])  # the input is not modified


def test_clip_by_global_norm_leaves_small_gradients_alone():
    grads = {"a": np.array([0.3, 0.4])}
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert clipped is grads and norm == pytest.approx(0.5)


def test_clip_by_global_norm_keeps_float32():
    clipped, _ = clip_by_global_norm({"a": np.full(4, 10.0, dtype=np.float32)}, 1.0)
    assert clipped["a"].dtype == np.float32
    np.testing.assert_allclose(clipped["a"], 0.5, rtol=1e-6)


def test_optimizer_with_clip_norm_steps_with_the_clipped_gradient():
    params = one_param(0.0, 0.0)
    opt = SGD(lr=1.0, clip_norm=1.0)
    opt.step(params, grad(3.0, 4.0))
    np.testing.assert_allclose(params["w"], [-0.6, -0.8])
    assert opt.last_grad_norm == 5.0


# ---- validation and the factory ----


@pytest.mark.parametrize(
    "build,argument",
    [
        (lambda: SGD(lr=0.0), "lr"),
        (lambda: SGD(lr=-1.0), "lr"),
        (lambda: Adam(lr=float("nan")), "lr"),
        (lambda: SGD(lr=0.1, momentum=1.0), "momentum"),
        (lambda: SGD(lr=0.1, momentum=-0.1), "momentum"),
        (lambda: Adagrad(eps=0.0), "eps"),
        (lambda: Adam(beta1=1.0), "beta1"),
        (lambda: Adam(beta2=-0.5), "beta2"),
        (lambda: Adam(clip_norm=0.0), "clip_norm"),
        (lambda: Adam(lr=True), "lr"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_the_argument(build, argument):
    with pytest.raises(ValueError, match=argument):
        build()


def test_step_rejects_grads_whose_keys_or_shapes_do_not_match():
    params = {"a": np.zeros(2), "b": np.zeros(3)}
    with pytest.raises(ValueError, match="missing \\['b'\\]"):
        Adam().step(params, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match="'b'"):
        Adam().step(params, {"a": np.zeros(2), "b": np.zeros(4)})


def test_make_optimizer_builds_each_by_name_and_rebuilds_from_hparams():
    for name, cls in (("sgd", SGD), ("adagrad", Adagrad), ("ADAM", Adam)):
        opt = make_optimizer(name, 0.02)
        assert isinstance(opt, cls) and opt.lr == 0.02
    opt = make_optimizer("adam", 3e-4, beta1=0.5, clip_norm=10.0)
    rebuilt = make_optimizer(**opt.hparams())
    assert rebuilt.hparams() == opt.hparams() == {
        "name": "adam", "lr": 3e-4, "beta1": 0.5, "beta2": 0.999, "eps": 1e-8, "clip_norm": 10.0}


def test_make_optimizer_rejects_unknown_names_and_arguments():
    with pytest.raises(ValueError, match="rmsprop"):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(ValueError, match="momentum"):
        make_optimizer("adam", 0.1, momentum=0.9)


# ---- training a VAE ----


def test_a_few_hundred_adam_steps_on_a_fixed_batch_lower_the_vae_loss_markedly():
    from tinyvae.config import VAEConfig, init_params
    from tinyvae.vae import loss_and_grads, negative_elbo

    rng = np.random.default_rng(0)
    config = VAEConfig(input_dim=16, hidden_dims=(12,), latent_dim=2)
    params = init_params(config, rng)
    x = (rng.uniform(size=(8, 16)) < 0.3).astype(np.float64)  # (B, D) a fixed binary batch
    eval_eps = rng.standard_normal((32, 8, 2))  # the same noise before and after

    def mean_loss():
        return np.mean([negative_elbo(params, x, eps, config)[0].mean() for eps in eval_eps])

    before = mean_loss()
    opt = Adam(lr=1e-2)
    for _ in range(300):
        _, grads, _ = loss_and_grads(params, x, rng.standard_normal((8, 2)), config)
        opt.step(params, grads)
    after = mean_loss()
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
def test_the_state_of_an_optimizer_that_never_stepped_loads_back(name):
    params = {"w": np.ones(3)}
    fresh = make_optimizer(name, 0.1, **({"momentum": 0.9} if name == "sgd" else {}))
    again = make_optimizer(name, 0.1, **({"momentum": 0.9} if name == "sgd" else {}))
    load_checked(again, fresh.state_dict(), params)  # a checkpoint saved before the first step
    assert again.t == 0
