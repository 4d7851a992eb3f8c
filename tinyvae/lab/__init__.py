"""The lab: the engineering around the lecture's core, in five rooms and one shared error.

    datasets/   the images: MNIST, Fashion-MNIST, binarized MNIST; read, verified, binarized
    storage/    runs and models on disk: atomic files, checkpoints, model files, their checks
    training/   the training run itself: the crash-safe runner, its settings, schedules,
                progress, a paper's recipe, the run's output folder
    figures/    the figures of a trained model, and the latent-space explorer
    bench/      the speed benchmark's measurements
    errors.py   UsageError, a value the caller gave that cannot be used

The lab imports the core and the speed wing, never the command lines (tinyvae/commands/),
which import it (tests/test_layering.py keeps it so).
"""
