"""The benchmark runs and prints every figure it promises. Times are printed, never asserted:
they depend on the machine and on whatever else it is doing.

tinyvae/lab/bench/bench.py measures, tinyvae/commands/bench.py is the command line that prints."""

import re
import subprocess
import sys

import numpy as np
import pytest

from tinyvae import optim
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.bench import bench, bench_iw
from tinyvae.lab.datasets.binarize import minibatches
from tinyvae.speed.step import FastStep

TINY = ["--random-data", "--train-images", "700", "--hidden", "16", "--latent-dim", "3",
        "--repeats", "2"]


def run_bench(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "tinyvae.commands.bench", *TINY, *args],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def field(output: str, pattern: str) -> re.Match:
    match = re.search(pattern, output, re.MULTILINE)
    assert match, f"no line matching {pattern!r} in:\n{output}"
    return match


@pytest.mark.slow
def test_the_benchmark_prints_every_figure():
    out = run_bench("--iw-samples", "4", "--iw-images", "30")
    field(out, r"^model: 784-16-3 relu bernoulli, batch 128, float32, adam \(lr 0\.001\), "
               r"path fast$")
    field(out, r"^data: random uniform images, 700 per epoch, binarize none "
               r"\(random images: the times are real, the losses mean nothing\)$")
    assert field(out, r"^numpy: (\S+)$").group(1) == np.__version__
    field(out, r"^blas: .+")
    field(out, r"^blas threads: (\d+|unknown .*)$")
    field(out, r"^cpus: \d+$")
    field(out, r"^optimizer update: [12] thread\(s\)$")
    field(out, r"^environment: .*OPENBLAS_CORETYPE=.*OPENBLAS_L2_SIZE=")
    field(out, r"^warm-up epoch: [\d.]+ s$")
    assert len(field(out, r"^epochs \(s\): (.+)$").group(1).split()) == 2
    field(out, r"^epoch: median [\d.]+ s, [\d,]+ samples/s$")
    assert len(field(out, r"^matmuls alone \(s\): (.+)$").group(1).split()) == 2
    # 6 epochs' batches of 128 and one of 60, 11 multiplies each (6L + 5 with L = 1 hidden layer)
    field(out, r"^matmuls alone: median [\d.]+ s per epoch "
               r"\(66 calls, [\d.]+ GFLOP, \d+ GFLOP/s\)$")
    field(out, r"^epoch / matmuls: [\d.]+$")
    field(out, r"^data feeding alone: [\d.]+ s per epoch$")
    field(out, r"^page faults per epoch: [\d,]+ minor, [\d,]+ major$")
    field(out, r"^peak RSS: \d+ MB$")
    field(out, r"^blas peak: \d+ GFLOP/s \(one 2048 x 2048 x 2048 float32 product, best of 3\); "
               r"at that rate the epoch's [\d.]+ GFLOP take [\d.]+ s$")
    field(out, r"^where the time goes "
               r"\(one more epoch on a copy of the model, timed by phase, [\d.]+ s\): "
               r"matmuls [\d.]+ s, "
               r"optimizer [\d.]+ s, likelihood [\d.]+ s, other [\d.]+ s$")  # "other" not negative
    field(out, r"^outside the matmuls: [\d.]+ s = [\d.]+ x this epoch's own matmuls, "
               r"of which the optimizer [\d.]+ x$")
    field(out, r"^load average at end: ")
    field(out, r"^L_4: the decoder's products for 30 x 4 samples are [\d,.]+ GFLOP, "
               r"[\d.e-]+ s at the blas peak$")
    floor = field(out, r"^L_4: its passes over every sample at NumPy's measured speed: "
                       r"softplus of the logits ([\d.e-]+) s, the hidden \w+ ([\d.e-]+) s "
                       r"\(= [\d.]+ x the products at the blas peak\)$")
    assert float(floor.group(1)) > 0 and float(floor.group(2)) > 0
    value = float(field(out, r"^L_4: (-?[\d.]+) nats on 30 test images in [\d.]+ s = "
                             r"[\d.]+ x its decoder's products at the blas peak$").group(1))
    assert value < 0  # a log-likelihood


@pytest.mark.slow
def test_l_k_on_two_threads_prints_the_same_bound(monkeypatch, capsys):
    from tinyvae.commands import bench as command
    seen, real = [], command.iw_bound

    def iw_bound(*args, **kwargs):
        seen.append(kwargs["threads"])
        return real(*args, **kwargs)

    monkeypatch.setattr(command, "iw_bound", iw_bound)
    printed = []
    for threads in ("1", "2"):
        assert command.main([*TINY, "--iw-samples", "40", "--iw-images", "250",
                             "--iw-threads", threads]) == 0
        printed.append(capsys.readouterr().out)
    assert seen == [1, 2]  # the flag reaches the bound
    pattern = (r"^L_40: (-?[\d.]+) nats on 250 test images in [\d.]+ s{} = "
               r"[\d.]+ x its decoder's products")
    assert field(printed[0], pattern.format("")).group(1) == \
        field(printed[1], pattern.format(r" on 2 threads \(two batches at once\)")).group(1)


@pytest.mark.slow
def test_the_reference_path_and_the_float64_check():
    out = run_bench("--path", "reference", "--iw-samples", "0", "--likelihood", "gaussian",
                    "--activation", "tanh", "--binarize", "dynamic", "--float64-check",
                    "--check-epochs", "1")
    field(out, r"^model: 784-16-3 tanh gaussian, .* path reference$")
    field(out, r"^where the time goes: timed by phase on the fast path only \(--path fast\)$")
    assert not re.search(r"^L_", out, re.MULTILINE)
    field(out, r"^epoch: median [\d.]+ s, [\d,]+ samples/s$")
    match = field(out, r"^float64 check \(1 epochs, seed 0, \d+ s\): test ELBO float32 (-?[\d.]+), "
                       r"float64 (-?[\d.]+), difference ([\d.]+) nat$")
    elbo32, elbo64, diff = (float(g) for g in match.groups())
    assert diff == pytest.approx(abs(elbo32 - elbo64), abs=2e-3)
    assert diff < 0.3  # one epoch of a tiny model: float32 rounding is far below a nat


@pytest.mark.slow
def test_blas_threads_are_set_from_inside_when_asked():
    from tinyvae.speed.blas_threads import get_blas_threads
    out = run_bench("--iw-samples", "0", "--blas-threads", "1", "--repeats", "1")
    if get_blas_threads() is None:  # NumPy's BLAS is not an OpenBLAS this machine's NumPy exposes
        field(out, r"^blas threads: unknown .* \(--blas-threads\)$")
    else:
        field(out, r"^blas threads: 1 \(--blas-threads\)$")


def test_bad_arguments_are_refused_by_argparse():
    result = subprocess.run([sys.executable, "-m", "tinyvae.commands.bench", "--hidden", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "hidden sizes must be positive" in result.stderr


@pytest.mark.parametrize("hidden", [(400,), (300, 200)])
def test_the_matmul_plan_is_the_fast_steps_own_and_skips_the_image_gradient(hidden):
    # Recorded from a real step: 6L + 5 multiplies per batch, and the FLOPs of exactly
    # the layers' forward, dW and dx products, minus dx of the first layer (the images).
    config = VAEConfig(hidden_dims=hidden, latent_dim=20)
    params = init_params(config, np.random.default_rng(0), dtype=np.float32)
    plan = bench.matmul_plan(config, params, optim.Adam(), [128, 96], np.float32,
                             np.random.default_rng(1))
    assert {B: len(calls) for B, calls in plan.items()} == {128: 6 * len(hidden) + 5,
                                                            96: 6 * len(hidden) + 5}
    for calls in plan.values():
        for a, b, out in calls:
            assert a.dtype == b.dtype == out.dtype == np.float32
            assert out.shape == (a.shape[0], b.shape[1])
    sizes = (784, *hidden)
    weights = [*zip(sizes[:-1], sizes[1:]), (hidden[-1], 40), (20, hidden[-1]),
               *zip(hidden[::-1][:-1], hidden[::-1][1:]), (hidden[0], 784)]
    per_image = sum(2 * 3 * i * o for i, o in weights) - 2 * 784 * hidden[0]  # no dx for the images
    batches = [128] * 468 + [96]
    _, flops = bench.plan_flops(plan, batches)
    assert flops == per_image * 60000
    if hidden == (400,):
        assert flops == 196.8e9  # issue 5's count for the default model


def test_timing_the_phases_sees_every_phase_and_changes_nothing():
    # The instrumented epoch must train exactly as a plain one, with time in each phase it
    # times (a wrapper never called would leave 0) and none double-counted ("other" >= 0).
    config = VAEConfig(hidden_dims=(16,), latent_dim=3)
    x = np.random.default_rng(0).random((300, 784), dtype=np.float32)
    results, real_matmul = [], np.matmul
    for timed in (False, True):
        params = init_params(config, np.random.default_rng(1), dtype=np.float32)
        step = FastStep(config, params, optim.Adam(), 64)
        rng = np.random.default_rng(2)
        if timed:
            parts = bench.breakdown_epoch(step, x, 64, "none", rng, np.float32, config.latent_dim)
            assert all(parts[name] > 0 for name in ("matmuls", "optimizer", "likelihood"))
            assert parts["other"] >= 0
            assert "_update" not in vars(step) and "_recon" not in vars(step)
            assert np.matmul is real_matmul
        else:
            bench.train_epoch(step, x, 64, "none", rng, np.float32, config.latent_dim)
        results.append({k: v.copy() for k, v in step.params.items()})
    assert all(np.array_equal(results[0][k], results[1][k]) for k in results[0])


def test_timing_the_phases_puts_everything_back_when_the_step_fails():
    config = VAEConfig(hidden_dims=(16,), latent_dim=3)
    params = init_params(config, np.random.default_rng(1), dtype=np.float32)
    step = FastStep(config, params, optim.Adam(), 8)
    real_matmul, seconds = np.matmul, dict.fromkeys(bench.PHASES, 0.0)
    with pytest.raises(ValueError, match="x must have shape"):
        with bench.timing_phases(step, seconds):
            step.step(np.zeros((8, 5), np.float32), np.zeros((8, 3), np.float32))
    assert np.matmul is real_matmul and "_update" not in vars(step) and "_recon" not in vars(step)
    # the methods work again
    step.step(np.full((8, 784), 0.5, np.float32), np.zeros((8, 3), np.float32))


def test_a_copy_of_the_step_trains_on_without_touching_the_original():
    config = VAEConfig(hidden_dims=(16,), latent_dim=3)
    params = init_params(config, np.random.default_rng(1), dtype=np.float32)
    step = FastStep(config, params, optim.Adam(), 8)
    x, eps = np.full((8, 784), 0.5, np.float32), np.ones((8, 3), np.float32)
    step.step(x, eps)
    twin = bench.copy_step(step)
    before = {k: v.copy() for k, v in step.params.items()}
    twin.step(x, eps)
    step.step(x, eps)  # the original's second step, from the same state, is the twin's
    for key in before:
        np.testing.assert_array_equal(twin.params[key], step.params[key])
        assert not np.shares_memory(twin.params[key], step.params[key])
    assert twin.t == step.t == 2


@pytest.mark.parametrize("hidden, likelihood, per_sample", [
    # by hand: 2·in·out per decoder matrix; Bernoulli adds the bias row and the sum over the
    # D pixels (2·D each) and x·l (2·H); a learned variance has a second (H, D) head
    ((400,), "bernoulli", 2 * (20 * 400 + 400 * 784) + 2 * 784 + 2 * 784 + 2 * 400),
    ((300, 200), "gaussian", 2 * (20 * 200 + 200 * 300 + 300 * 784)),
    ((400,), "gaussian-learned-variance", 2 * (20 * 400 + 2 * 400 * 784)),
    ((), "bernoulli", 2 * 20 * 784 + 2 * 784 + 2 * 784 + 2 * 20),
])
def test_the_decoder_flops_of_l_k_count_every_product(hidden, likelihood, per_sample):
    config = VAEConfig(hidden_dims=hidden, latent_dim=20, likelihood=likelihood)
    assert bench_iw.iw_decoder_flops(config, 3, 7) == per_sample * 3 * 7


def test_the_targets_are_judged_at_their_limits_and_unmeasured_ones_say_how():
    at_limits = {"epoch": 1.3, "ratio": 1.5, "faults": 10_000, "rss_mb": 600, "l5000": 180,
                 "float64_gap": 0.3}
    lines = bench.target_lines(at_limits)
    # "at most" targets are met at their limit, "under" ones are not
    assert [line.rsplit(", ", 1)[1] for line in lines] == ["met", "met", "not met", "not met",
                                                           "not met", "met"]
    lines = bench.target_lines({"epoch": 2.238, "ratio": 1.79, "faults": 0, "rss_mb": 299})
    assert lines[0] == "  one epoch <= 1.3 s: 2.238 s, not met"
    assert lines[2] == "  page faults per epoch in the thousands (< 10,000): 0, met"
    assert lines[4] == ("  L_5000 on the 10,000 test images < 180 s: "
                        "not measured (--iw-samples 5000)")
    assert lines[5].endswith("not measured (--float64-check)")


@pytest.mark.slow
def test_the_targets_are_printed_only_for_the_model_they_were_set_for():
    assert "the speed targets" not in run_bench("--iw-samples", "0")  # TINY is 784-16-3


def test_the_elementwise_floor_of_l_k_counts_what_the_model_has(monkeypatch):
    bernoulli = VAEConfig(input_dim=20, hidden_dims=(8, 4), latent_dim=2, activation="tanh")
    floor = bench_iw.elementwise_floor(bernoulli, 3, 1000, np.float32)
    assert floor["softplus"] > 0 and floor["activation"] > 0  # measured: some time, whatever it is
    # the counts: D logits and every hidden unit of each of the n·k samples
    monkeypatch.setattr(bench_iw, "seconds_per_element", lambda operations, dtype: 1.0)
    assert bench_iw.elementwise_floor(bernoulli, 3, 1000, np.float32) == {
        "softplus": 3 * 1000 * 20, "activation": 3 * 1000 * 12}
    gaussian = VAEConfig(input_dim=20, hidden_dims=(), latent_dim=2, likelihood="gaussian")
    assert bench_iw.elementwise_floor(gaussian, 3, 1000, np.float32) == {"softplus": 0.0,
                                                                          "activation": 0.0}


def test_update_threads_is_refused_off_the_fast_path():
    result = subprocess.run([sys.executable, "-m", "tinyvae", "bench", "--path", "reference",
                             "--update-threads", "2"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "only the fast path" in result.stderr and result.stdout == ""


# ---- k samples per image: the bench's --k, against the same model at k = 1 ----

def test_an_epoch_at_k_is_timed_against_the_same_model_at_k_1_in_one_run():
    out = run_bench("--iw-samples", "0", "--k", "3", "--objective", "iwae",
                    "--update-threads", "1")
    field(out, r"^model: 784-16-3 relu bernoulli, k 3, objective iwae, batch 128, float32, "
               r"adam \(lr 0\.001\), path fast$")
    # one figure per timed epoch
    assert len(field(out, r"^k = 1 epochs \(s\): (.+)$").group(1).split()) == 2
    assert len(field(out, r"^k = 1 matmuls alone \(s\): (.+)$").group(1).split()) == 2
    ratio, k_epoch, k1_epoch = (float(g) for g in field(
        out, r"^epoch at k = 3 / epoch at k = 1: ([\d.]+) "
             r"\(medians ([\d.]+) s / ([\d.]+) s\)$").groups())
    rounding = ratio * (0.001 / k_epoch + 0.001 / k1_epoch) + 0.005  # medians printed to 1 ms
    assert ratio == pytest.approx(k_epoch / k1_epoch, abs=rounding)
    flops = float(field(out, r"^matmuls alone at k = 3 / at k = 1: [\d.]+ in time, ([\d.]+) in "
                             r"FLOPs \([\d.]+ / [\d.]+ GFLOP\)$").group(1))
    # The encoder once per image (forward and dW; no dx for the images), the decoder on 3 rows per
    # image (forward, dW and dx): 2 FLOPs per multiply-add.
    encoder = 2 * (2 * 784 * 16 + 3 * 16 * 6)
    decoder = 2 * 3 * (3 * 16 + 16 * 784)
    assert flops == round((encoder + 3 * decoder) / (encoder + decoder), 2)
    assert "targets" not in out  # issue 5's targets are for k = 1


def test_the_matmul_plan_at_k_runs_the_encoder_on_b_rows_and_the_decoder_on_b_k_rows():
    # Recorded from a real step at K = 4: every product's FLOPs, by hand. The encoder's forward
    # and dW on B rows (no dx for the images); the decoder's forward, dW and dx on B·K rows.
    config = VAEConfig(hidden_dims=(16,), latent_dim=3, k=4, objective="iwae")
    params = init_params(config, np.random.default_rng(0), dtype=np.float32)
    plan = bench.matmul_plan(config, params, optim.Adam(), [10], np.float32,
                             np.random.default_rng(1))
    encoder = 2 * (2 * 784 * 16 + 3 * 16 * 6)  # per image; one head for μ and log σ² (6 = 2Z)
    decoder = 2 * 3 * (3 * 16 + 16 * 784)  # per sample
    assert bench.plan_flops(plan, [10]) == (11, 10 * (encoder + 4 * decoder))


class NoiseSpy:
    """A step that only records the noise it is given."""

    def __init__(self, config):
        self.config, self.eps = config, []

    def step(self, x, eps):
        self.eps.append(eps.copy())
        return {"loss": 0.0}


@pytest.mark.parametrize("k", [1, 3])
def test_a_bench_epoch_draws_k_noise_samples_per_image_as_the_runner_does(k):
    # (B, K, Z) in one call: for K = 1 the very numbers a (B, Z) draw gives.
    config = VAEConfig(hidden_dims=(16,), latent_dim=3, k=k)
    spy, x = NoiseSpy(config), np.full((50, 784), 0.5, np.float32)
    bench.train_epoch(spy, x, 20, "none", np.random.default_rng(5), np.float32, 3)
    assert [e.shape for e in spy.eps] == [(20, k, 3), (20, k, 3), (10, k, 3)]
    if k == 1:  # the loop of train_epoch with the (B, Z) draw it made before K existed
        rng, old = np.random.default_rng(5), []
        for xb in minibatches(x, 20, rng, binarize="none"):
            old.append(rng.standard_normal((len(xb), 3), dtype=np.float32))
        for new, before in zip(spy.eps, old):
            np.testing.assert_array_equal(new[:, 0], before)
