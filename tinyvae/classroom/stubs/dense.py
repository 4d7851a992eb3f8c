"""Exercise dense: the dense layer's backward.

Write the body of dense_backward() below, then check it with

    python -m tinyvae exercise check dense

from the folder that holds tinyvae-exercises/ (or pass --dir FOLDER). The check puts your
function into a small VAE in place of tinyvae's own, compares every gradient of the model with
central finite differences, and explains the first row that fails.
The derivation is docs/04-gradients.md eq. (2): try it on paper first.
"""


# For reference, the forward pass (tinyvae.layers.dense_forward):
#     out = x @ W + b          x (B, I), W (I, O), b (O,) -> out (B, O)
#     cache = (x, W)


def dense_backward(dout, cache):
    """The gradients of a dense layer out = x·W + b, docs/04-gradients.md eq. (2).

    dout (B, O) is dL/d(out); cache = (x, W) as dense_forward left it.
    Return dx (B, I), dW (I, O), db (O,): dL/dx, dL/dW, dL/db. Do not modify dout.
    """
    x, W = cache
    raise NotImplementedError("dense_backward: docs/04-gradients.md eq. (2)")
