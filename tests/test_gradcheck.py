"""Tests of tinyvae.gradcheck: the finite differences, the relative error, the per-key checker,
and the command line (tinyvae/commands/gradcheck.py), including a deliberately broken gradient
(tinyvae/classroom/breaks.py) that it must catch."""

import re
import subprocess
import sys

import numpy as np
import pytest

from tinyvae.gradcheck import check_params, numerical_gradient, rel_error

# ---- numerical_gradient ----


def test_numerical_gradient_of_a_known_function_matches_its_derivative():
    # f(x) = Σ sin(x_ij)·x_ij² has ∂f/∂x_ij = cos(x_ij)·x_ij² + 2 x_ij sin(x_ij)
    x = np.random.default_rng(0).normal(size=(3, 4))
    numerical = numerical_gradient(lambda: np.sum(np.sin(x) * x**2), x)
    exact = np.cos(x) * x**2 + 2 * x * np.sin(x)
    assert rel_error(numerical, exact) < 1e-8


def test_numerical_gradient_of_a_quadratic_form_is_exact_up_to_rounding():
    # f(x) = ½ xᵀAx has gradient ½ (A + Aᵀ) x; central differences are exact for quadratics
    rng = np.random.default_rng(1)
    A, x = rng.normal(size=(5, 5)), rng.normal(size=5)
    numerical = numerical_gradient(lambda: 0.5 * x @ A @ x, x)
    np.testing.assert_allclose(numerical, 0.5 * (A + A.T) @ x, rtol=0, atol=1e-9)


def test_numerical_gradient_restores_x_exactly():
    x = np.random.default_rng(2).normal(size=(2, 3))
    before = x.copy()
    numerical_gradient(lambda: np.sum(np.exp(x)), x)
    assert x.tobytes() == before.tobytes()


def test_numerical_gradient_restores_x_even_when_f_raises():
    x = np.array([1.0, 2.0])

    def f():
        if x[0] != 1.0:
            raise RuntimeError("boom")
        return 0.0

    with pytest.raises(RuntimeError):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_numerical_gradient_refuses_float32():
    x = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match="float64"):
        numerical_gradient(lambda: float(x.sum()), x)


# ---- rel_error ----


def test_rel_error_is_zero_for_equal_arrays_and_symmetric():
    a = np.array([1.0, -2.0, 3.0])
    b = np.array([1.1, -2.0, 2.5])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, b) == rel_error(b, a)


def test_rel_error_measures_the_worst_difference_against_the_largest_entry():
    a = np.array([1.0, 1e-3])
    b = np.array([1.0, 1.1e-3])
    # |1e-3 − 1.1e-3| / (1 + 1) = 5e-5: a small entry's rounding noise is not inflated ...
    assert rel_error(a, b) == pytest.approx(1e-4 / 2)
    # ... while a wrong sign on a small entry is still far above any rounding noise.
    assert rel_error(a, np.array([1.0, -1e-3])) == pytest.approx(2e-3 / 2)


def test_rel_error_is_one_for_opposite_signs_and_for_zero_against_nonzero():
    assert rel_error(np.array([2.0]), np.array([-2.0])) == 1.0
    assert rel_error(np.array([0.0]), np.array([5.0])) == 1.0


def test_rel_error_is_scale_invariant_above_the_floor():
    a, b = np.array([1.0, 2.0]), np.array([1.001, 1.998])
    assert rel_error(1e3 * a, 1e3 * b) == pytest.approx(rel_error(a, b), rel=1e-12)


def test_rel_error_floor_keeps_two_tiny_numbers_from_counting_as_different():
    # |1e-12 − 0| / max(1e-8, 1e-12) = 1e-4 rather than 1
    assert rel_error(np.array([1e-12]), np.array([0.0])) == pytest.approx(1e-4)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_rel_error_rejects_different_shapes():
    with pytest.raises(ValueError, match="shape"):
        rel_error(np.zeros(2), np.zeros(3))


# ---- check_params on a small model with known gradients ----


def linear_regression(rng):
    """loss = ½ mean_i ‖x_i W + b − y_i‖², with its analytic gradients."""
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}

    def loss_fn():
        r = x @ params["W"] + params["b"] - y
        return 0.5 * np.sum(r * r) / len(x)

    r = x @ params["W"] + params["b"] - y
    grads = {"W": x.T @ r / len(x), "b": r.sum(axis=0) / len(x)}
    return loss_fn, params, grads


def test_check_params_passes_correct_gradients_for_every_key():
    loss_fn, params, grads = linear_regression(np.random.default_rng(3))
    rows = check_params(loss_fn, params, grads)
    assert [row.name for row in rows] == ["W", "b"]
    assert all(row.passed and row.rel_error < 1e-7 for row in rows)
    name, analytic_norm, numerical_norm, error, passed = rows[0]
    assert analytic_norm == pytest.approx(np.linalg.norm(grads["W"]))
    assert numerical_norm == pytest.approx(analytic_norm, rel=1e-8)


def test_check_params_fails_exactly_the_row_whose_gradient_is_wrong():
    loss_fn, params, grads = linear_regression(np.random.default_rng(4))
    grads["W"] = grads["W"].copy()
    grads["W"][1, 0] *= 1.01  # one entry 1 % off
    rows = check_params(loss_fn, params, grads)
    assert {row.name: row.passed for row in rows} == {"W": False, "b": True}


def test_check_params_rejects_grads_with_other_keys():
    loss_fn, params, grads = linear_regression(np.random.default_rng(5))
    del grads["b"]
    with pytest.raises(ValueError, match="missing \\['b'\\]"):
        check_params(loss_fn, params, grads)


# ---- the whole VAE ----


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-learned-variance"])
def test_the_vae_checker_catches_one_perturbed_gradient_entry_in_exactly_that_row(likelihood):
    from tinyvae.config import VAEConfig
    from tinyvae.gradcheck import random_problem
    from tinyvae.vae import loss_and_grads

    config = VAEConfig(input_dim=5, hidden_dims=(4, 3), latent_dim=2, likelihood=likelihood,
                       gaussian_std=0.5)
    params, x, eps = random_problem(config, 2, np.random.default_rng(54))
    _, grads, _ = loss_and_grads(params, x, eps, config)
    grads["decoder.W1"] = grads["decoder.W1"].copy()
    grads["decoder.W1"][2, 1] += 1e-4
    rows = check_params(lambda: loss_and_grads(params, x, eps, config)[0], params, grads)
    assert [row.name for row in rows if not row.passed] == ["decoder.W1"]


def test_a_broken_backward_is_caught_and_the_real_one_restored():
    from tinyvae import layers
    from tinyvae.classroom.breaks import broken
    from tinyvae.config import VAEConfig
    from tinyvae.gradcheck import check_vae

    config = VAEConfig(input_dim=5, hidden_dims=(4, 3), latent_dim=2, activation="tanh")
    original = layers.ACTIVATIONS["tanh"]
    with broken("tanh"):
        rows = check_vae(config, 2, 54, 1e-5, 1e-7)
    failed = {(term, row.name) for term, row in rows if not row.passed}
    # the wrong tanh derivative sits in the hidden layers: their weights, and all the encoder
    # before them, go wrong; the output layers after the last tanh do not see it
    assert ("recon", "encoder.W0") in failed and ("full", "decoder.W0") in failed
    assert ("full", "decoder.W_out") not in failed and ("kl", "encoder.W_mu") not in failed
    assert layers.ACTIVATIONS["tanh"] == original
    rows = check_vae(config, 2, 54, 1e-5, 1e-7)
    assert all(row.passed for _, row in rows)


# ---- the command line ----


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "tinyvae", "gradcheck", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_prints_an_all_pass_table_and_exits_0():
    result = run_cli()
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "PASS if < 1e-07" in out and "likelihood=bernoulli" in out
    for term in ("full", "recon", "kl"):
        assert f"{term:<5}  encoder.W0" in out
    assert "FAIL" not in out
    assert out.strip().splitlines()[-1].startswith("gradcheck: all 42 checks PASS")


@pytest.mark.slow
def test_cli_all_combinations_pass():
    result = run_cli("--all")
    assert result.returncode == 0, result.stdout + result.stderr
    for likelihood in ("bernoulli", "gaussian", "gaussian-learned-variance"):
        for activation in ("relu", "tanh"):
            assert f"likelihood={likelihood} activation={activation}" in result.stdout
    assert "FAIL" not in result.stdout


def test_cli_with_a_broken_backward_prints_fail_rows_and_exits_1():
    result = run_cli("--break", "relu")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN ON PURPOSE" in result.stdout
    assert "FAIL" in result.stdout and "a wrong gradient" in result.stdout
    assert " checks FAIL" in result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_cli_summary_is_not_mistaken_for_a_test_runner_summary():
    for args in ((), ("--break", "kl")):
        lines = run_cli(*args).stdout.splitlines()
        assert not any(re.fullmatch(r"\s*\d+ passed, \d+ failed\s*", line) for line in lines)


def test_cli_rejects_bad_options():
    assert run_cli("--hidden", "4,x").returncode == 2
    result = run_cli("--break", "tanh", "--activation", "relu")
    assert result.returncode == 2 and "needs --activation tanh" in result.stderr


def test_cli_refuses_an_infinite_threshold_with_a_one_line_error():
    # with --threshold inf every row would pass, even a planted bug's
    result = subprocess.run(
        [sys.executable, "-m", "tinyvae.commands.gradcheck", "--threshold", "inf"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [result.stderr.strip().splitlines()[-1]]
    assert "argument --threshold: expected a number > 0, got 'inf'" in errors[0]


def test_a_swap_is_undone_even_when_the_body_raises():
    from tinyvae import layers, vae
    from tinyvae.classroom.swap import registered, swapped

    original, entry = layers.dense_backward, layers.ACTIVATIONS["relu"]
    with pytest.raises(RuntimeError):
        with swapped(layers.relu_backward, lambda dout, cache: dout) as places:
            assert places == 2  # layers.relu_backward and the registry's relu entry
            raise RuntimeError("a student's function failed")
    assert layers.ACTIVATIONS["relu"] is entry and layers.relu_backward is entry.backward
    with swapped(original, None) as places:
        assert places == 2 and vae.dense_backward is None  # vae imports it by name: reached too
    assert vae.dense_backward is original and layers.dense_backward is original
    with pytest.raises(ValueError, match="already registered"):
        with registered(layers.ACTIVATIONS, "relu", entry):
            pass
    assert layers.ACTIVATIONS["relu"] is entry
