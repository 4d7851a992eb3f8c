"""A sweep of nonsense values for every numeric flag (and odd paths and environment variables)
of every program, each run as a user would run it; prints a table of outcomes.

    MPLBACKEND=Agg python tests/tools/sweep_nonsense.py [--workers 2] [--only train]

(with TINYVAE_DATA pointing at a data root holding mnist/, if the data is not in ~/.cache/tinyvae).

Not collected by pytest (about 900 runs, 10-20 minutes on 2 cores); tests/test_reliability_*.py
keep each class true in CI with fast cases. An outcome is one of:
  refused     exit 2, one error line (argparse's usage lines aside), no traceback
  ran         exit 0 (the value is valid; the tiny run finished)
  stopped     another non-zero exit with a one-line message and no traceback (e.g. 1: diverged)
  long        still running at the time limit (a valid value asking for a long run)
  TRACEBACK   a Python traceback: the class this sweep exists to find
  CRASH       killed by a signal
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUMBERS = ["0", "-1", "1e20", "100000000000000000000", "2147483648", "nan", "inf", "-inf", "1e-200",
           "abc", ""]
PY = [sys.executable]
TINYVAE = PY + ["-m", "tinyvae"]
TRAIN_BASE = ["--epochs", "1", "--train-limit", "64", "--test-limit", "32", "--hidden", "8",
              "--latent-dim", "2", "--iw-samples", "0", "--out", "{tmp}/out"]

# program: (command, base arguments, numeric flags, path flags). {tmp} is a fresh folder per run,
# {ckpt} a checkpoint of a tiny model trained once at the start.
PROGRAMS = {
    "train": (TINYVAE + ["train"], TRAIN_BASE,
              ["--epochs", "--batch-size", "--lr", "--hidden", "--latent-dim", "--gaussian-std",
               "--beta", "--warmup-epochs", "--seed", "--iw-samples", "--train-limit",
               "--test-limit"],
              ["--out", "--resume", "--data-dir"]),
    "examples/mnist.py": (PY + [str(ROOT / "examples/mnist.py")], TRAIN_BASE,
                          ["--epochs", "--seed", "--batch-size", "--lr"], []),
    "gradcheck": (TINYVAE + ["gradcheck"], [],
                  ["--hidden", "--latent-dim", "--input-dim", "--batch-size", "--beta",
                   "--gaussian-std", "--seed", "--h", "--threshold"], []),
    "bench": (TINYVAE + ["bench"],
              ["--random-data", "--train-images", "256", "--hidden", "8", "--latent-dim", "2",
               "--batch-size", "64", "--repeats", "1", "--iw-samples", "0"],
              ["--train-images", "--hidden", "--latent-dim", "--batch-size", "--lr", "--repeats",
               "--iw-samples", "--iw-images", "--check-epochs", "--seed", "--blas-threads",
               "--update-threads", "--iw-threads"],
              ["--data-dir"]),
    "evaluate": (TINYVAE + ["evaluate", "{ckpt}"], ["--iw-samples", "5"],
                 ["--iw-samples", "--test-binarization-seed"], ["--json", "--data-dir"]),
    "sample": (TINYVAE + ["sample", "{ckpt}"], ["--png", "{tmp}/s.png"],
               ["--n", "--seed", "--nrow"], ["--png", "--npz"]),
    "reconstruct": (TINYVAE + ["reconstruct", "{ckpt}"], ["--png", "{tmp}/r.png"],
                    ["--n", "--start", "--seed"], ["--png", "--npz"]),
    "explore": (TINYVAE + ["explore", "{ckpt}"], ["--png", "{tmp}/e.png"],
                ["--sliders", "--image", "--other"], ["--png"]),
    "reproduce": (TINYVAE + ["reproduce"],
                  ["--stages", "1-1", "--train-limit", "64", "--test-limit", "32",
                   "--iw-samples", "5", "--out", "{tmp}/out"],
                  ["--seed", "--iw-samples", "--train-limit", "--test-limit"],
                  ["--out", "--summary", "--plot"]),
    "examples/amortization_gap.py": (
        PY + [str(ROOT / "examples/amortization_gap.py")],
        ["--checkpoint", "{ckpt}", "--images", "2", "--steps", "5", "--samples", "4",
         "--eval-samples", "10", "--k", "10", "--plot", "{tmp}/p.png"],
        ["--images", "--steps", "--samples", "--lr", "--eval-samples", "--k", "--seed"],
        ["--plot", "--json", "--checkpoint"]),
    "examples/autoencoder_vs_vae.py": (
        PY + [str(ROOT / "examples/autoencoder_vs_vae.py")],
        ["--epochs", "1", "--train-limit", "64", "--test-limit", "32", "--hidden", "8",
         "--latent-dim", "2", "--out", "{tmp}/out"],
        ["--epochs", "--latent-dim", "--hidden", "--seed", "--train-limit", "--test-limit"],
        ["--out"]),
    "examples/decoder_sigma_as_beta.py": (
        PY + [str(ROOT / "examples/decoder_sigma_as_beta.py")],
        ["--sigmas", "0.5", "--epochs", "1", "--train-limit", "64", "--test-limit", "32",
         "--plot", "{tmp}/p.png"],
        ["--sigmas", "--epochs", "--train-limit", "--test-limit", "--seed"],
        ["--plot", "--json"]),
    "examples/elbo_identity.py": (
        PY + [str(ROOT / "examples/elbo_identity.py")],
        ["--repeats", "5", "--plot", "{tmp}/p.png"], ["--seed", "--repeats"], ["--plot"]),
    "examples/reparameterization_vs_score_function.py": (
        PY + [str(ROOT / "examples/reparameterization_vs_score_function.py")],
        ["--repeats", "5", "--plot", "{tmp}/p.png"], ["--seed", "--repeats"], ["--plot"]),
}
PATHS = ["", "{tmp}/missing/folder/file", "/proc/version", "/dev/full", "{tmp}", "{tmp}/fifo"]
ENVIRONMENTS = {"TINYVAE_DATA=a file": "{tmp}/a-file", "TINYVAE_DATA=empty": "",
                "TINYVAE_DATA=missing": "{tmp}/nope"}


def with_flag(base: list[str], flag: str, value: str) -> list[str]:
    """base with `flag value` replacing the flag's base value, or appended."""
    out = list(base)
    if flag in out:
        at = out.index(flag)
        return out[:at] + [flag, value] + out[at + 2:]
    return out + [flag, value]


def classify(result, timed_out: bool) -> str:
    if timed_out:
        return "long"
    err = result.stderr
    if "Traceback" in err:
        return "TRACEBACK"
    if result.returncode < 0:
        return "CRASH"
    if result.returncode == 0:
        return "ran"
    message = [line for line in err.strip().splitlines()
               if line.strip() and not line.startswith(("usage:", " "))]
    if result.returncode == 2:
        return "refused" if len(message) == 1 else f"refused ({len(message)} lines)"
    return "stopped" if len(message) <= 1 else f"stopped ({len(message)} lines)"


def run_case(case, ckpt: str, timeout: float):
    program, cls, flag, value, argv, env_extra = case
    with tempfile.TemporaryDirectory() as tmp:
        os.mkfifo(f"{tmp}/fifo")
        Path(f"{tmp}/a-file").write_text("not a folder")
        fill = lambda s: s.replace("{tmp}", tmp).replace("{ckpt}", ckpt)  # noqa: E731
        argv = [fill(a) for a in argv]
        env = {**os.environ, **{k: fill(v) for k, v in env_extra.items()}}
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                                    stdin=subprocess.DEVNULL, cwd=tmp)
            outcome = classify(result, False)
            last = (result.stderr.strip().splitlines() or [""])[-1][:150]
        except subprocess.TimeoutExpired:
            outcome, last = "long", ""
    return program, cls, flag, value, outcome, last


def cases(only: set[str] | None):
    for program, (command, base, numeric, paths) in PROGRAMS.items():
        if only and program not in only:
            continue
        for flag in numeric:
            for value in NUMBERS:
                yield program, "numeric", flag, value, command + with_flag(base, flag, value), {}
        for flag in paths:
            for value in PATHS:
                yield program, "path", flag, value, command + with_flag(base, flag, value), {}
        if program in ("train", "bench", "evaluate"):
            for name, value in ENVIRONMENTS.items():
                yield program, "environment", name, value, command + base, {"TINYVAE_DATA": value}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--only", nargs="*", help="programs to sweep (default: all)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sweep-"))
    ckpt = work / "base" / "checkpoint.npz"
    subprocess.run(TINYVAE + ["train"]
                   + [a.replace("{tmp}/out", str(work / "base")) for a in TRAIN_BASE],
                   check=True, capture_output=True)
    todo = list(cases(set(args.only) if args.only else None))
    print(f"{len(todo)} runs, {args.workers} at a time", flush=True)
    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda c: run_case(c, str(ckpt), args.timeout), todo))
    table = collections.Counter((program, cls, outcome)
                                for program, cls, _, _, outcome, _ in results)
    print(f"\n{'program':<50} {'class':<12} {'outcome':<22} runs")
    for (program, cls, outcome), n in sorted(table.items()):
        print(f"{program:<50} {cls:<12} {outcome:<22} {n}")
    totals = collections.Counter(outcome for *_, outcome, _ in results)
    print("\ntotal:", ", ".join(f"{outcome} {n}" for outcome, n in sorted(totals.items())),
          f"of {len(results)}")
    bad = [r for r in results if r[4] in ("TRACEBACK", "CRASH") or "lines" in r[4]]
    if bad:
        print("\nto fix:")
        for program, _, flag, value, outcome, last in bad:
            print(f"  {program} {flag} {value!r}: {outcome}: {last}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
