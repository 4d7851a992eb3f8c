"""Issue 23's hostile campaign: scripted tries of each class of the issue, each run as a user would
run it, against the tinyvae on PYTHONPATH; prints, per class, the tries and how many went wrong.

    TINYVAE_DATA=/work/shared/data MPLBACKEND=Agg python tests/tools/sweep_round3.py [--only data]

Not collected by pytest (a few hundred runs, 5-15 minutes on 2 cores); the test modules
tests/test_reliability_{outputs,settings,signals,anywhere}.py keep each class true with fast
cases. Every file it makes (device nodes, links, FIFOs, read-only mounts) is in a temporary
folder: no try touches /dev or anything outside it. Run as root, the read-only folder is a
read-only tmpfs (chmod does not stop root), and a device node is made with mknod.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

PY = sys.executable
TINY = ["--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--iw-samples", "5",
        "--train-limit", "300", "--test-limit", "40"]
RESULTS: dict[str, list[tuple[str, bool, str]]] = collections.defaultdict(list)


def defaults() -> None:
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def tinyvae(*args, timeout=120, cwd=None, preexec=defaults, **kw):
    try:
        return subprocess.run([PY, "-m", "tinyvae", *map(str, args)], capture_output=True,
                              text=True, errors="replace", timeout=timeout, cwd=cwd,
                              preexec_fn=preexec, **kw)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, None, "", "TIMEOUT")


def clean(result, status=None) -> bool:
    """No traceback, one line on stderr (if it failed), the status asked for (if any)."""
    err = result.stderr.strip()
    ok = result.returncode is not None and "Traceback" not in err
    if result.returncode not in (0, None):
        ok = ok and len([line for line in err.splitlines()
                         if not line.startswith(("usage:", " "))]) == 1
    return ok and (status is None or result.returncode == status)


def record(cls: str, what: str, good: bool, detail: str = "") -> None:
    RESULTS[cls].append((what, good, detail[:160].replace("\n", " | ")))


def base_run(work: Path) -> Path:
    out = work / "base"
    done = tinyvae("train", *TINY, "--out", out)
    assert done.returncode == 0, done.stderr
    return out / "checkpoint.npz"


# ---- data loss ----


def crashed_overwrite(folder: Path, ckpt: Path) -> dict:
    aside = folder / ".replaced-4242-1"
    aside.mkdir(parents=True)
    old = {"checkpoint.npz": ckpt.read_bytes(), "metrics.json": b"{}", "samples.png": b"old"}
    for name, content in old.items():
        (aside / name).write_bytes(content)
    return old


def survived(folder: Path, old: dict) -> bool:
    for place in [folder, *folder.glob(".replaced-*")]:
        if all((place / n).exists() and (place / n).read_bytes() == c for n, c in old.items()):
            return True
    return False


def sweep_data_loss(work: Path, ckpt: Path) -> None:
    takers = {"train --out OV": lambda ov: tinyvae("train", *TINY, "--out", ov),
              "figures --out OV": lambda ov: tinyvae("figures", ckpt, "--out", ov),
              "reproduce --out OV": lambda ov: tinyvae("reproduce", "iwae-vae", "--stages", "0",
                                                       "--train-limit", "60", "--test-limit", "20",
                                                       "--iw-samples", "5", "--out", ov),
              "evaluate --json OV/m.json": lambda ov: tinyvae("evaluate", ckpt, "--iw-samples", "0",
                                                              "--json", ov / "m.json")}
    for name, take in takers.items():
        ov = work / f"ov-{len(RESULTS['data loss'])}"
        old = crashed_overwrite(ov, ckpt)
        # it writes figures there, as asked: the run's data must stay
        if name.startswith("figures"):
            del old["samples.png"]
        take(ov)
        then = tinyvae("train", *TINY, "--out", ov)  # and a plain run after it
        record("data loss", f"crashed --overwrite, then {name}, then train --out OV",
               survived(ov, old), then.stderr.strip()[-120:])
    # the real kill, in the window between the aside and the first checkpoint
    for attempt in range(3):
        ov = work / f"killed-{attempt}"
        tinyvae("train", *TINY, "--out", ov)
        old = {p.name: p.read_bytes() for p in ov.iterdir() if p.is_file()}
        process = subprocess.Popen([PY, "-m", "tinyvae", "train", *TINY, "--latent-dim", "3",
                                    "--out", str(ov), "--overwrite"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 60
        while (not list(ov.glob(".replaced-*")) and process.poll() is None
               and time.monotonic() < end):
            time.sleep(0.002)
        process.kill()
        process.wait()
        tinyvae("train", *TINY, "--out", ov)
        record("data loss",
               f"kill -9 of train --overwrite after the aside, then train (try {attempt})",
               survived(ov, old))
    # outputs that point elsewhere
    targets = ["link to a file", "dangling link", "FIFO with a reader", "FIFO without a reader",
               "character device", "link to /proc/self/fd/1", "a folder", "a socket"]
    commands = {"evaluate --json": (["evaluate", ckpt, "--iw-samples", "0", "--json"], ".json"),
                "sample --png": (["sample", ckpt, "--n", "4", "--png"], ".png"),
                "sample --npz": (["sample", ckpt, "--n", "4", "--npz"], ".npz"),
                "reconstruct --npz": (["reconstruct", ckpt, "--npz"], ".npz"),
                "explore --png": (["explore", ckpt, "--png"], ".png")}
    for cname, (args, suffix) in commands.items():
        for target in targets:
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                tmp = Path(tmp)
                path = tmp / f"out{suffix}"
                real = tmp / f"real{suffix}"
                reader = None
                if target == "link to a file":
                    real.write_bytes(b"old")
                    path.symlink_to(real)
                elif target == "dangling link":
                    path.symlink_to(real)
                elif target.startswith("FIFO"):
                    os.mkfifo(path)
                    if target == "FIFO with a reader":
                        reader = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
                elif target == "character device":
                    if os.geteuid() != 0:
                        continue
                    subprocess.run(["mknod", str(path), "c", "1", "3"], check=True)
                elif target == "link to /proc/self/fd/1":
                    path.symlink_to("/proc/self/fd/1")
                elif target == "a folder":
                    path.mkdir()
                elif target == "a socket":
                    sock = socket.socket(socket.AF_UNIX)
                    sock.bind(str(path))
                result = tinyvae(*args, path, timeout=60)
                got = b""
                if reader is not None:
                    try:
                        got = reader.communicate(timeout=10)[0]
                    except subprocess.TimeoutExpired:  # the FIFO was replaced: nobody writes it
                        reader.kill()
                        reader.communicate()
                if target in ("link to a file", "dangling link"):
                    good = (path.is_symlink() and real.is_file() and real.read_bytes() != b"old"
                            and clean(result, 0))
                elif target == "FIFO with a reader":
                    good = path.is_fifo() and len(got) > 0 and clean(result, 0)
                elif target == "FIFO without a reader":
                    good = path.is_fifo() and clean(result) and result.returncode is not None
                elif target == "character device":
                    good = path.is_char_device() and clean(result, 0)
                elif target == "link to /proc/self/fd/1":
                    good = path.is_symlink() and clean(result, 0)
                else:
                    good = (clean(result) and result.returncode != 0
                            and (path.is_dir() or path.is_socket()))
                record("data loss", f"{cname} into {target}", good, result.stderr.strip()[-120:])


# ---- silent wrong results, hangs and tracebacks from a checkpoint's run settings ----

BAD = [("test_limit", "abc"), ("test_limit", 0), ("test_limit", -5), ("seed", -1), ("seed", "x"),
       ("dataset", "../../../../etc"), ("dataset", None), ("iw_samples", "x"), ("iw_samples", 2.5),
       ("iw_samples", True), ("iw_samples", 10**11), ("binarize", "weird"), ("binarize", 7),
       ("dtype", "int8"), ("gaussian_std", -1), ("likelihood", "gaussian"), ("hidden", []),
       ("latent_dim", 3), ("epochs", -1), ("lr", 0), ("beta", 0.5), ("activation", "sigmoid"),
       ("k", 0), (None, [1, 2]), (None, "mnist")]


def rewritten(ckpt: Path, path: Path, *, cli=None, params=None) -> Path:
    from tinyvae.lab.storage.checkpoint import load_checkpoint, save_checkpoint
    c = load_checkpoint(ckpt)
    extra = dict(c.extra)
    if cli is not None:
        extra["cli"] = cli
    save_checkpoint(path, params={**c.params, **(params or {})}, optimizer=c.optimizer,
                    config=c.config, epoch=c.epoch, history=c.history, rng=c.rng, extra=extra)
    return path


def sweep_settings(work: Path, ckpt: Path) -> None:
    from tinyvae.lab.storage.checkpoint import load_checkpoint
    cli = load_checkpoint(ckpt).extra["cli"]
    for key, value in BAD:
        bad = rewritten(ckpt, work / f"bad-{key}-{value!s:.12}.npz".replace("/", "_"),
                        cli=value if key is None else {**cli, key: value})
        for verb in ("evaluate", "figures", "reconstruct", "explore"):
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                extra = {"figures": ["--out", tmp], "reconstruct": ["--png", f"{tmp}/r.png"],
                         "explore": ["--png", f"{tmp}/e.png"]}.get(verb, [])
                result = tinyvae(verb, bad, *extra, timeout=60)
                record("settings", f"{verb} with {key}={value!r}", clean(result, 2),
                       result.stderr.strip()[-120:])
        new = work / f"resumed-{len(RESULTS['settings'])}"
        result = tinyvae("train", "--resume", bad, "--out", new, "--epochs", "2", timeout=60)
        copied = (new / "checkpoint.npz").exists()
        record("settings", f"train --resume with {key}={value!r}", clean(result, 2) and not copied,
               result.stderr.strip()[-120:])
    # a reproduction's checkpoint, scored as its stage evaluation scored it
    rep = work / "rep"
    tinyvae("reproduce", "iwae-vae", "--stages", "0-1", "--train-limit", "100",
            "--test-limit", "40", "--iw-samples", "30", "--out", rep, timeout=300)
    history = json.loads((rep / "history.json").read_text())
    result = tinyvae("evaluate", rep / "checkpoint.npz", "--json", work / "rep.json", timeout=300)
    if result.returncode == 0:
        numbers = json.loads((work / "rep.json").read_text())
        good = (numbers["iw_samples"] == 30
                and abs(numbers["iw_bound"] - history[-1]["iw_bound"]) < 1e-4
                and ": 40 test images" in result.stdout)
    else:
        good = False
    record("settings", "evaluate a reproduce checkpoint: its test limit, k and stage seed", good)
    # models of another input size
    import tinyvae as tv
    from tinyvae.config import VAEConfig, init_params
    for D in (5, 100, 1024, 3136):
        config = VAEConfig(input_dim=D, hidden_dims=(4,), latent_dim=2)
        model = work / f"d{D}.npz"
        tv.save_model(model, config, init_params(config, np.random.default_rng(0)))
        for verb in ("evaluate", "reconstruct", "figures", "explore", "sample"):
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                extra = {"figures": ["--out", tmp], "explore": ["--png", f"{tmp}/e.png"],
                         "sample": ["--png", f"{tmp}/s.png"],
                         "reconstruct": ["--png", f"{tmp}/r.png"]}
                result = tinyvae(verb, model, *extra.get(verb, []), timeout=60)
                square = int(D ** 0.5) ** 2 == D
                good = clean(result, 0) if verb == "sample" and square else clean(result, 2)
                record("settings", f"{verb} on a model of {D} pixels", good,
                       result.stderr.strip()[-120:])
    # extreme but finite weights
    for key, value in (("encoder.b_logvar", 1e30), ("encoder.W_logvar", 1e30),
                       ("encoder.b_mu", 1e30), ("decoder.b_out", 3e38)):
        c = load_checkpoint(ckpt)
        params = {key: np.full_like(c.params[key], value)}
        extreme = rewritten(ckpt, work / f"extreme-{key}.npz", params=params)
        for verb, extra in (("evaluate", []), ("evaluate", ["--json", "{tmp}/m.json"]),
                            ("reconstruct", ["--png", "{tmp}/r.png"]),
                            ("figures", ["--out", "{tmp}"]),
                            ("explore", ["--png", "{tmp}/e.png"]),
                            ("sample", ["--png", "{tmp}/s.png"])):
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                result = tinyvae(verb, extreme, *[a.replace("{tmp}", tmp) for a in extra],
                                 timeout=120)
                nan_printed = result.returncode == 0 and "nan" in result.stdout.lower()
                good = clean(result) and not nan_printed and result.returncode in (0, 1)
                record("settings", f"{verb} {' '.join(extra[:1])} with {key} = {value:g}", good,
                       result.stderr.strip()[-120:])
    # models and buffers too large for the machine
    for args in (["train", "--hidden", "99999999"], ["train", "--latent-dim", "2000000000"],
                 ["train", "--hidden", "200000", "--k", "1000000"],
                 ["train", "--hidden", "3000000,3000000"],
                 ["bench", "--random-data", "--train-images", "2147483647", "--repeats", "1"],
                 ["bench", "--random-data", "--hidden", "99999999"],
                 ["gradcheck", "--input-dim", "2147483647"],
                 ["gradcheck", "--hidden", "2147483647"],
                 ["gradcheck", "--batch-size", "2147483647"],
                 ["sample", ckpt, "--n", "2147483647", "--npz", work / "huge.npz"]):
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            start = time.monotonic()
            result = tinyvae(*args, timeout=120, cwd=tmp)
            good = clean(result, 2) and time.monotonic() - start < 30
            record("settings", " ".join(map(str, args[:3])), good, result.stderr.strip()[-120:])


# ---- runs, signals and holds ----

PAUSING = textwrap.dedent("""
    import os, runpy, sys, time
    fsync, paused = os.fsync, []
    def pausing(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if (name.endswith(".tmp") and any(s + "." in name for s in (".png", ".json", ".npz"))
                and not paused):
            paused.append(name)
            print("WRITING", flush=True)
            time.sleep(60)
        return fsync(fd)
    os.fsync = pausing
    sys.argv = ["tinyvae", *sys.argv[1:]]
    runpy.run_module("tinyvae", run_name="__main__", alter_sys=True)
""")


def sweep_runs(work: Path, ckpt: Path) -> None:
    verbs = {"figures": ["figures", ckpt, "--out", "{tmp}"],
             "sample": ["sample", ckpt, "--png", "{tmp}/s.png"],
             "reconstruct": ["reconstruct", ckpt, "--npz", "{tmp}/r.npz"],
             "explore": ["explore", ckpt, "--png", "{tmp}/e.png"],
             "evaluate": ["evaluate", ckpt, "--iw-samples", "0", "--json", "{tmp}/m.json"]}
    for name, args in verbs.items():
        for signame in ("SIGTERM", "SIGHUP"):
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                process = subprocess.Popen([PY, "-c", PAUSING,
                                            *[str(a).replace("{tmp}", tmp) for a in args]],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True, preexec_fn=defaults)
                for line in process.stdout:
                    if line.startswith("WRITING"):
                        break
                process.send_signal(getattr(signal, signame))
                _, err = process.communicate(timeout=60)
                stray = [p.name for p in Path(tmp).rglob("*.tmp")]
                good = process.returncode == 130 and "Traceback" not in err and not stray
                record("runs", f"{signame} to {name} while it writes", good,
                       f"status {process.returncode}, stray {stray}")
    chance = random.Random(23)
    for attempt in range(20):
        process = subprocess.Popen([PY, "-m", "tinyvae", "figures", str(work / "none.npz")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=defaults)
        time.sleep(chance.uniform(0.05, 1.5))
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        frames = [line.strip() for line in err.splitlines() if line.strip().startswith("File ")]
        where = next((f for f in frames if "tinyvae" in f), frames[0] if frames else "")
        record("runs", f"Ctrl-C during start-up (try {attempt})", "Traceback" not in err, where)
    busy = work / "held"
    holder = subprocess.Popen([PY, "-c", textwrap.dedent(f"""
        import time
        from tinyvae.lab.storage.files import hold_folder
        with hold_folder({str(busy)!r}):
            print("HOLDING", flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    (busy / "checkpoint.npz").write_bytes(ckpt.read_bytes())
    for args in (["figures", ckpt, "--out", busy], ["sample", busy / "checkpoint.npz"],
                 ["reconstruct", busy / "checkpoint.npz"],
                 ["evaluate", ckpt, "--iw-samples", "0", "--json", busy / "m.json"],
                 ["reproduce", "iwae-vae", "--stages", "0", "--out", busy]):
        result = tinyvae(*args)
        names = sorted(p.name for p in busy.iterdir())
        good = (result.returncode != 0 and names == [".tinyvae.lock", "checkpoint.npz"]
                and clean(result))
        record("runs", f"{args[0]} into a folder a run holds", good, result.stderr.strip()[-120:])
    holder.kill()
    holder.wait()
    rep = ["reproduce", "iwae-vae", "--train-limit", "60", "--test-limit", "20",
           "--iw-samples", "5"]
    tinyvae(*rep, "--stages", "0", "--out", work / "steps", timeout=300)
    flags = {"--train-limit": "60", "--test-limit": "20", "--iw-samples": "5", "--seed": "0",
             "--step": "fast"}
    for flag, value in (("--step", "reference"), ("--seed", "1"), ("--test-limit", "21"),
                        ("--iw-samples", "6")):
        changed = [a for item in {**flags, flag: value}.items() for a in item]
        result = tinyvae("reproduce", "iwae-vae", "--stages", "0-1", "--out", work / "steps",
                         *changed, timeout=300)
        record("runs", f"reproduce resumed with {flag} {value}", clean(result, 2),
               result.stderr.strip()[-120:])

    def small_files():
        defaults()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    for args in ([*rep, "--stages", "0", "--out", "{tmp}/rep"],
                 ["train", *TINY, "--hidden", "400", "--out", "{tmp}/run"],
                 ["figures", ckpt, "--out", "{tmp}"],
                 ["sample", ckpt, "--n", "900", "--png", "{tmp}/s.png"],
                 ["evaluate", ckpt, "--iw-samples", "0", "--json", "{tmp}/m.json"]):
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            result = tinyvae(*[str(a).replace("{tmp}", tmp) for a in args], preexec=small_files,
                             timeout=300)
            if result.returncode == 0:
                continue  # everything it wrote fitted: no try
            good = clean(result, 1) and "cannot write" in result.stderr
            record("runs", f"a full disk (EFBIG) in {args[0]}", good, result.stderr.strip()[-120:])
    ro = work / "ro"
    ro.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m",
                                                    "tmpfs", str(ro)]).returncode == 0
    if not mounted:
        ro.chmod(0o555)
    try:
        for args in (["train", *TINY, "--out", ro / "run"], ["figures", ckpt, "--out", ro],
                     ["sample", ckpt, "--png", ro / "s.png"],
                     ["reconstruct", ckpt, "--npz", ro / "r.npz"],
                     ["explore", ckpt, "--png", ro / "e.png"],
                     ["evaluate", ckpt, "--iw-samples", "0", "--json", ro / "m.json"],
                     [*rep, "--stages", "0", "--out", ro / "rep"]):
            result = tinyvae(*args, timeout=300)
            good = (clean(result, 1) and "cannot write" in result.stderr
                    and "Errno" not in result.stderr)
            record("runs", f"{args[0]} into a read-only folder", good, result.stderr.strip()[-120:])
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)])


def report() -> int:
    bad = 0
    for cls, rows in RESULTS.items():
        wrong = [r for r in rows if not r[1]]
        bad += len(wrong)
        print(f"\n{cls}: {len(rows)} tries, {len(wrong)} wrong")
        for what, _, detail in wrong:
            print(f"  WRONG {what}: {detail}")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=["data", "settings", "runs"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sweep23-"))
    ckpt = base_run(work)
    chosen = set(args.only or ["data", "settings", "runs"])
    if "data" in chosen:
        sweep_data_loss(work, ckpt)
    if "settings" in chosen:
        sweep_settings(work, ckpt)
    if "runs" in chosen:
        sweep_runs(work, ckpt)
    return report()


if __name__ == "__main__":
    sys.exit(main())
