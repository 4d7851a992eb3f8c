"""Runs and models on disk: files written so that a crash never leaves half of one, and read
so that a damaged or hostile file is refused before it is trusted.

    files.py         atomic writes, OutputError, and the lock by which a run owns its folder
    targets.py       what an output path is (a file, a link, a stream), and writing streams
    npz.py           an .npz archive whose every claim is checked before anything is read
    checkpoint.py    everything a run needs to continue exactly where it stopped, in one .npz
    state_checks.py  what a checkpoint's generator state, optimizer memory and history must be
    model.py         a trained VAE held in Python (tinyvae.load, Model, save_model), and model files
"""
