"""`python -m tinyvae evaluate CKPT`: the numbers of a saved model, by its run's own protocol.

    python -m tinyvae evaluate runs/mnist/checkpoint.npz                   # what training printed
    python -m tinyvae evaluate runs/mnist/checkpoint.npz --iw-samples 5000 # L_5000, as the papers
    # another test draw:
    python -m tinyvae evaluate runs/mnist/checkpoint.npz --test-binarization-seed 1

The test set, its binarization and every seed come from the checkpoint
(tinyvae/lab/training/run_settings.py, the code the training command uses), so the test ELBO, L_k
and the active units printed here are exactly the ones the training run printed.
--test-binarization-seed scores the model on another Bernoulli draw of the same test images
instead (a binarized run's test set is one draw, made once): how much the numbers owe to that
draw. A model file (Model.save) keeps no settings: it is scored by the defaults for its
likelihood, and says so. A reproduction's checkpoint is scored as its stage evaluation scores it
(reproduce: its test set, the recipe's k and the stage's noise seed). The first lines say which
protocol, and where a flag departs from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..lab.storage.files import write_json
from ..lab.training import run_settings, runfolder
from ..lab.training.progress import CountProgress, clock
from . import saved
from .args import nonnegative_int, seed


def build_parser():
    p = saved.parser("evaluate", "The test ELBO (split into reconstruction and KL), L_k and "
                     "active units of a saved model, on the test set and by the protocol its "
                     "training run used.", data=True)
    p.add_argument("--iw-samples", type=nonnegative_int, metavar="K",
                   help="k of L_k; 0 skips it (default: the run's, 1000 for a model file)")
    p.add_argument("--test-binarization-seed", type=seed, metavar="S",
                   help="score on the test images' Bernoulli draw of seed S instead of the "
                        f"run's own (default: {run_settings.TEST_BINARIZATION_SEED}); binarized "
                        "runs only")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="also write the numbers (as metrics.json holds them) to FILE")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def body(say) -> int:
        model, json_path, data = saved.model_and_test_set(args, args.json, ".json", "--json",
                                                          test_seed=args.test_binarization_seed)
        settings = model.run_protocol()
        k = settings["iw_samples"] if args.iw_samples is None else args.iw_samples
        say(saved.describe(model))
        say(f"data: {data.described}: {len(data.x_test)} test images")
        scored = settings.get("scored_by", "as a model file: by the defaults for its likelihood")
        say(f"scored {scored}"
            + ("" if k == settings["iw_samples"] else
               f", but for k = {k} (--iw-samples; the run's is {settings['iw_samples']})"))
        seconds = run_settings.estimate_seconds(model.params, model.config, len(data.x_test), k)
        say(f"evaluating: {run_settings.what_is_evaluated(len(data.x_test), k)}, about "
            f"{clock(seconds)} (timed on one batch now)")
        results = model.evaluate(data.x_test, k=k, progress=CountProgress(f"L_{k}", say.stream))
        for line in run_settings.report_lines(results, model.config, settings):
            say(line)
        if json_path is not None:
            with runfolder.writing_into(json_path):
                write_json(json_path, run_settings.metrics_of(
                    results, model.config, settings, data=data.described, n_test=len(data.x_test),
                    epochs=model.epochs, checkpoint=str(args.checkpoint)))
            say(f"wrote {json_path}")
        return 0

    return saved.run_verb(parser.prog, body)


if __name__ == "__main__":
    sys.exit(main())
