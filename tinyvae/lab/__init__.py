"""The lab: the engineering around the lecture's core, in five rooms and a few shared modules.

    datasets/   the images: MNIST, Fashion-MNIST, binarized MNIST; read, verified, binarized
    storage/    runs and models on disk: atomic files, checkpoints, model files, their checks
    training/   the training run itself: the crash-safe runner, its settings, schedules,
                progress, a paper's recipe, the run's output folder
    figures/    the figures of a trained model, and the latent-space explorer
    bench/      the speed benchmark's measurements
    errors.py   UsageError, a value the caller gave that cannot be used; ResultError
    values.py   the checks of counts, seeds, sizes and names that flags and checkpoints share
    memory.py   whether a model or buffer fits in this machine's memory, asked before allocating
    signals.py  SIGTERM and SIGHUP stop a command as Ctrl-C does

The lab imports the core and the speed wing, never the command lines (tinyvae/commands/),
which import it (tests/test_layering.py keeps it so).
"""
