"""`python -m tinyvae VERB ...`: the command lines, one verb each.

    train       train a VAE on MNIST, evaluate it, draw figures (= examples/mnist.py)
    evaluate    the test ELBO, L_k and active units of a saved model
    sample      images drawn from a saved model's prior
    reconstruct test images and their reconstructions by a saved model
    figures     every figure of a run, redrawn from its checkpoint
    explore     sliders over a saved model's latent space
    gradcheck   every analytic gradient against central finite differences, PASS/FAIL
    exercise    the classroom: backward passes written by students, graded row by row
    reproduce   a paper's table, run by its own protocol (Burda et al.'s VAE)
    bench       time training epochs and their parts (the speed wing's benchmark)

`python -m tinyvae VERB --help` shows each verb's options and defaults. Every verb exits with
0 (done), 1 (the work failed), 2 (refused before any work) or 130 (interrupted: Ctrl-C, SIGTERM,
SIGHUP): tinyvae/commands/status.py.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

from .lab.signals import (
    INTERRUPTED,
    caused_by_ctrl_c,
    raise_lost_interrupt,
    stops_as_ctrl_c,
)

# verb -> (module with main(argv), one line of help). Modules are imported only when their
# verb runs, so `python -m tinyvae gradcheck` does not load the data or plotting code.
VERBS = {
    "train": ("tinyvae.commands.train",
              "train a VAE on MNIST, evaluate it, draw figures (= examples/mnist.py)"),
    "evaluate": ("tinyvae.commands.evaluate",
                 "the test ELBO, L_k and active units of a saved model"),
    "sample": ("tinyvae.commands.sample", "images drawn from a saved model's prior"),
    "reconstruct": ("tinyvae.commands.reconstruct",
                    "test images and their reconstructions by a saved model"),
    "figures": ("tinyvae.commands.figures", "every figure of a run, redrawn from its checkpoint"),
    "explore": ("tinyvae.commands.explore", "sliders over a saved model's latent space"),
    "gradcheck": ("tinyvae.commands.gradcheck",
                  "analytic gradients against central finite differences"),
    "exercise": ("tinyvae.commands.exercise",
                 "the classroom: students' backward passes, graded row by row"),
    "reproduce": ("tinyvae.commands.reproduce",
                  "a paper's table by its own protocol (Burda et al.'s VAE)"),
    "bench": ("tinyvae.commands.bench", "time training epochs and their parts"),
}


def usage() -> str:
    width = max(map(len, VERBS))
    lines = [f"  {verb:<{width}}  {text}" for verb, (_, text) in VERBS.items()]
    return ("usage: python -m tinyvae VERB [options]\n\nverbs:\n" + "\n".join(lines)
            + "\n\n`python -m tinyvae VERB --help` for each verb's options.")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"python -m tinyvae: unknown verb {verb!r}; choose one of {', '.join(VERBS)}",
              file=sys.stderr)
        return 2
    # SIGTERM and SIGHUP stop every verb as Ctrl-C does, and Ctrl-C while the verb's modules
    # load (a second or so: matplotlib) is an interruption like any other, not a traceback.
    try:
        with stops_as_ctrl_c():
            try:
                module = importlib.import_module(VERBS[verb][0])
            except Exception as exc:  # a Ctrl-C in an extension's initialization, wrapped
                if caused_by_ctrl_c(exc):
                    raise KeyboardInterrupt from None
                raise
            raise_lost_interrupt()  # a Ctrl-C that landed in one of importlib's callbacks
            # argparse names the program after it in its messages
            sys.argv[0] = f"python -m tinyvae {verb}"
            status = module.main(rest)
            # The command has ended and said so: a Ctrl-C in the moments the interpreter takes
            # to exit changes nothing, and must not turn the status into a death by signal.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return status
    except KeyboardInterrupt:
        print(f"python -m tinyvae {verb}: interrupted", file=sys.stderr)
        return INTERRUPTED


def run() -> int:
    """main(), and a reader that stops early (`python -m tinyvae --help | head`) is no error."""
    try:
        return main()
    except BrokenPipeError:
        # Point stdout at nothing, so that Python's own flush at exit does not fail once more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(run())
