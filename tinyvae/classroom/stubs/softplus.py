"""Exercise softplus: softplus' backward, and softplus as a new activation.

Write the body of softplus_backward() below, then check it with either of

    python softplus.py
    python -m tinyvae exercise check softplus

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (6): try it on paper first.
"""

from tinyvae.layers import sigmoid  # noqa: F401  σ(x) = 1 / (1 + e^(−x)), safe for any x

# For reference, the forward pass (tinyvae.layers.softplus_forward):
#     out = log(1 + e^x)       computed as np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
#     cache = x                the INPUT, unlike tanh and sigmoid
# The check adds softplus to the activations for its own run and trains nothing.


def softplus_backward(dout, cache):
    """dL/dx for out = log(1 + e^x), docs/04-gradients.md eq. (6).

    dout (B, H) is dL/d(out); cache is x (B, H). Return dx (B, H), a new array.
    """
    raise NotImplementedError("softplus_backward: docs/04-gradients.md eq. (6)")


if __name__ == "__main__":  # `python softplus.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "softplus")
