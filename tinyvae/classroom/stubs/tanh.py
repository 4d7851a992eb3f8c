"""Exercise tanh: tanh's backward.

Write the body of tanh_backward() below, then check it with

    python -m tinyvae exercise check tanh

from the folder that holds tinyvae-exercises/ (or pass --dir FOLDER). The check puts your
function into a small VAE in place of tinyvae's own, compares every gradient of the model with
central finite differences, and explains the first row that fails.
The derivation is docs/04-gradients.md eq. (4): try it on paper first.
"""


# For reference, the forward pass (tinyvae.layers.tanh_forward):
#     out = np.tanh(x)
#     cache = out              the OUTPUT tanh(x), not the input x


def tanh_backward(dout, cache):
    """dL/dx for out = tanh(x), docs/04-gradients.md eq. (4).

    dout (B, H) is dL/d(out); cache is out = tanh(x) (B, H). Return dx (B, H), a new array:
    do not modify dout or the cache.
    """
    raise NotImplementedError("tanh_backward: docs/04-gradients.md eq. (4)")
