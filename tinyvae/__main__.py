"""`python -m tinyvae VERB ...`: the command lines, one verb each.

    train       train a VAE on MNIST, evaluate it, draw figures (= examples/mnist.py)
    gradcheck   every analytic gradient against central finite differences, PASS/FAIL
    bench       time training epochs and their parts (the speed wing's benchmark)

`python -m tinyvae VERB --help` shows each verb's options and defaults.
"""

from __future__ import annotations

import importlib
import sys

# verb -> (module with main(argv), one line of help). Modules are imported only when their
# verb runs, so `python -m tinyvae gradcheck` does not load the data or plotting code.
VERBS = {
    "train": ("tinyvae.commands.train", "train a VAE on MNIST, evaluate it, draw figures (= examples/mnist.py)"),
    "gradcheck": ("tinyvae.commands.gradcheck", "analytic gradients against central finite differences"),
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
        print(f"python -m tinyvae: unknown verb {verb!r}; choose one of {', '.join(VERBS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    sys.argv[0] = f"python -m tinyvae {verb}"  # argparse names the program after it in its messages
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
