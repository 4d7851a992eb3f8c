"""tinyvae: a variational autoencoder in NumPy, with every gradient derived and checked.

Read the modules in the order of the lecture (docs/README.md is the map):
layers -> losses -> vae -> optim -> gradcheck -> data -> train -> evaluate -> plots.
"""

__version__ = "0.1.0"
