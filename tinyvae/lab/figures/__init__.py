"""What people would rather see than read: the figures of a trained VAE, and a window to play in.

    plots.py         reconstructions, samples, loss curves, a reproduction; the drawing tools
    latent_plots.py  the latent space: codes and ellipses, manifold, interpolation, traversal
    figures.py       every figure of a run, drawn from its model and its test set
    explorer.py      the "smile slider": latent sliders and the decoded image following them
"""
