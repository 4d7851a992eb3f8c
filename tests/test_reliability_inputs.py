"""Issue 12, bad input: every command-line number gets "expected ..." and exit 2, the benchmark
reports no timings for a diverged model, and the public functions refuse empty batches and NaN
parameters or β with a ValueError that names them, instead of a ZeroDivisionError or a NaN."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyvae import evaluate, train, vae
from tinyvae.commands import args, bench
from tinyvae.config import VAEConfig, init_params
from tinyvae.optim import make_optimizer
from tinyvae.speed import iw

NONSENSE = ["0", "-1", "-0", "1e20", "100000000000000000000", "2147483648", "nan", "NaN", "inf",
            "-inf", "1.5", "abc", "", " ", "0x10", "1e-400", "9" * 5000, "--", "None"]

# (argparse type, the values it must accept)
TYPES = {
    "positive_int": (args.positive_int, lambda v: isinstance(v, int) and 1 <= v <= args.MAX_INT),
    "nonnegative_int": (args.nonnegative_int,
                        lambda v: isinstance(v, int) and 0 <= v <= args.MAX_INT),
    "seed": (args.seed, lambda v: isinstance(v, int) and 0 <= v <= 2**63 - 1),
    "positive_float": (args.positive_float, lambda v: math.isfinite(v) and v > 0),
    "nonnegative_float": (args.nonnegative_float, lambda v: math.isfinite(v) and v >= 0),
    "hidden_sizes": (args.hidden_sizes,
                     lambda v: all(1 <= n <= args.MAX_INT for n in v) and len(v) >= 1),
}


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(TYPES)),
       text=st.one_of(st.sampled_from(NONSENSE), st.text(max_size=12),
                      st.integers(-2**70, 2**70).map(str), st.floats().map(repr),
                      st.floats().map(str),
                      st.lists(st.integers(-3, 2**33), min_size=1, max_size=3)
                      .map(lambda xs: ",".join(map(str, xs)))))
def test_every_argument_type_accepts_a_valid_value_or_says_what_it_expected(kind, text):
    parse, valid = TYPES[kind]
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as exc:
        assert str(exc).startswith("expected ") and "\n" not in str(exc)
        return
    assert valid(value), (text, value)


BENCH_FLAGS = {"--train-images": "positive_int", "--hidden": "hidden_sizes",
               "--latent-dim": "positive_int", "--batch-size": "positive_int",
               "--lr": "positive_float", "--repeats": "positive_int",
               "--iw-samples": "nonnegative_int", "--iw-images": "positive_int",
               "--check-epochs": "positive_int", "--seed": "seed", "--blas-threads": "positive_int"}


def test_the_list_of_bench_flags_is_complete():
    help_text = subprocess.run([sys.executable, "-m", "tinyvae", "bench", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    numeric = {"--train-images", "--hidden", "--latent-dim", "--batch-size", "--lr", "--repeats",
               "--iw-samples", "--iw-images", "--check-epochs", "--seed", "--blas-threads"}
    assert numeric <= set(BENCH_FLAGS) and all(flag in help_text for flag in BENCH_FLAGS)


@pytest.mark.parametrize("flag", sorted(BENCH_FLAGS))
@pytest.mark.parametrize("value", NONSENSE)
def test_bench_refuses_nonsense_for_every_numeric_flag_with_exit_2(flag, value, monkeypatch,
                                                                   capsys):
    ran = []
    # a valid value is not timed here
    monkeypatch.setattr(bench, "run", lambda a: ran.append(a) or 0)
    parse, valid = TYPES[BENCH_FLAGS[flag]]
    try:
        accepted = valid(parse(value))
    except argparse.ArgumentTypeError:
        accepted = False
    if accepted:
        assert bench.main([flag, value]) == 0 and len(ran) == 1
        return
    with pytest.raises(SystemExit) as info:
        bench.main([flag, value])
    err = capsys.readouterr().err
    assert info.value.code == 2 and not ran
    assert "Traceback" not in err and f"argument {flag}: expected " in err.splitlines()[-1]


def test_bench_reports_no_timings_for_a_diverged_model():
    command = [sys.executable, "-m", "tinyvae", "bench", "--random-data", "--train-images", "64",
               "--hidden", "4", "--latent-dim", "2", "--batch-size", "32", "--repeats", "2",
               "--iw-samples", "0"]
    for lr in ["1e30", "1e4"]:
        result = subprocess.run(command + ["--lr", lr], capture_output=True, text=True, timeout=300)
        assert result.returncode == 1, result
        assert result.stderr.strip().count("\n") == 0 and "training diverged" in result.stderr
        assert "epoch: median" not in result.stdout and "samples/s" not in result.stdout


# ---- the public API ----

CONFIG = VAEConfig(input_dim=6, hidden_dims=(5,), latent_dim=2)
PARAMS = init_params(CONFIG, np.random.default_rng(0), np.float64)
X = (np.random.default_rng(1).random((4, 6)) < 0.5).astype(np.float64)


def calls(params, x, beta=None):
    """Each public function that computes a loss, as a zero-argument call."""
    eps = np.zeros((len(x), CONFIG.latent_dim))
    rng = np.random.default_rng(0)
    return {
        "loss_and_grads": lambda: vae.loss_and_grads(params, x, eps, CONFIG, beta=beta),
        "negative_elbo": lambda: vae.negative_elbo(params, x, eps, CONFIG, beta=beta),
        "train_step": lambda: train.train_step({k: v.copy() for k, v in params.items()},
                                               make_optimizer("adam"), x, eps, CONFIG, beta),
        "test_elbo": lambda: evaluate.test_elbo(params, x, CONFIG, rng),
        "iw_bound": lambda: evaluate.iw_bound(params, x, CONFIG, rng, k=3),
        "log_likelihood": lambda: vae.log_likelihood(params, x, eps, CONFIG),
        "train_epochs": lambda: train.train_epochs({k: v.copy() for k, v in params.items()},
                                                   make_optimizer("adam"), CONFIG, x, rng, epochs=1,
                                                   batch_size=2),
    }


@settings(max_examples=80, deadline=None)
@given(key=st.sampled_from(sorted(PARAMS)), bad=st.sampled_from([np.nan, np.inf, -np.inf]),
       data=st.data())
def test_a_nan_or_infinite_parameter_is_named_not_returned_as_nan(key, bad, data):
    params = {k: v.copy() for k, v in PARAMS.items()}
    params[key].reshape(-1)[data.draw(st.integers(0, params[key].size - 1))] = bad
    name = data.draw(st.sampled_from(sorted(calls(params, X))))
    try:
        with np.errstate(all="ignore"):  # the NaN arithmetic before the check is expected
            result = calls(params, X)[name]()
    except ValueError as exc:
        assert key in str(exc)
        return
    # a value that never reaches the loss (inf·0 is avoided, e.g. under a ReLU) may give a finite
    # result
    flat = np.concatenate([np.ravel(np.asarray(r if not isinstance(r, dict) else list(r.values()),
                                               dtype=float))
                           for r in (result if isinstance(result, tuple) else (result,))
                           if not isinstance(r, dict) or all(np.isscalar(v) for v in r.values())])
    assert np.all(np.isfinite(flat)), (name, key, bad)


@pytest.mark.parametrize("beta", [np.nan, np.inf, -np.inf, -1.0, "1", None.__class__])
@pytest.mark.parametrize("name", ["loss_and_grads", "negative_elbo", "train_step"])
def test_a_bad_beta_is_refused_by_name(name, beta):
    with pytest.raises(ValueError, match="beta"):
        calls(PARAMS, X, beta=beta)[name]()


PER_EXAMPLE = ("negative_elbo", "log_likelihood")  # one value per example: none for no examples


@pytest.mark.parametrize("name", sorted(calls(PARAMS, X)))
def test_an_empty_batch_is_refused_where_a_mean_is_taken(name):
    if name in PER_EXAMPLE:
        result = calls(PARAMS, X[:0])[name]()
        assert all(len(r) == 0 for r in (result if isinstance(result, tuple) else (result,)))
        return
    with pytest.raises(ValueError, match="empty"):
        calls(PARAMS, X[:0])[name]()


@pytest.mark.parametrize("n", [-1, 1.5, "3", np.nan])
def test_sample_refuses_a_bad_count(n):
    with pytest.raises(ValueError, match="n must be"):
        vae.sample(PARAMS, n, np.random.default_rng(0), CONFIG)


def test_the_streamed_iw_bound_is_the_readable_bound(monkeypatch):
    """Past CHUNK_BYTES of ε, the fast bound streams an image's samples through in pieces: the
    same ε as the readable bound draws at once, and the same L_k up to the rounding of a running
    log-sum-exp."""
    rng_args = dict(k=37, batch_size=3)
    direct = evaluate.iw_bound_per_example(PARAMS, X, CONFIG, np.random.default_rng(5), **rng_args)
    monkeypatch.setattr(iw, "CHUNK_BYTES", 64)
    streamed = iw.iw_bound_per_example(PARAMS, X, CONFIG, np.random.default_rng(5), **rng_args)
    np.testing.assert_allclose(streamed, direct, rtol=1e-12)


@pytest.mark.slow
def test_the_fast_iw_bound_memory_does_not_grow_with_k():
    """k = 500,000 samples of a 60-dimensional z for one image: drawn at once, ε alone would be
    240 MB; the speed wing's bound streams them, and the process grows by a few MB (and so for
    k = 2·10⁹)."""
    script = textwrap.dedent("""
        import resource
        import numpy as np
        from tinyvae.speed import iw
        from tinyvae.config import VAEConfig, init_params
        config = VAEConfig(input_dim=3, hidden_dims=(2,), latent_dim=60)
        params = init_params(config, np.random.default_rng(0), np.float64)
        x = np.array([[0.0, 1.0, 1.0]])
        iw.iw_bound(params, x, config, np.random.default_rng(1), k=1000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        value = iw.iw_bound(params, x, config, np.random.default_rng(1), k=500_000)
        assert np.isfinite(value)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 60
