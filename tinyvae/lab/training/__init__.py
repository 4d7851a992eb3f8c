"""The training run itself: what it trains on, how it is driven, scored and shown.

    runner.py        the crash-safe run (fit): checkpoints, resume, Ctrl-C, divergence, history
    run_settings.py  a run's settings: the images it trained and was scored on, how it was scored
    schedule.py      learning-rate schedules, piecewise constant, kept in checkpoints
    progress.py      progress lines for epochs and evaluation passes, on a terminal or in a log
    recipes.py       a published paper's experiment as data (Burda et al.'s VAE), stage by stage
    runfolder.py     a run owns its output folder: --resume into it, --overwrite what it held

(Not named runs/: the .gitignore keeps training outputs out of git by ignoring every runs/.)
"""
