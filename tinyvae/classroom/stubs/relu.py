"""Exercise relu: ReLU's backward.

Write the body of relu_backward() below, then check it with either of

    python relu.py
    python -m tinyvae exercise check relu

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (3): try it on paper first.
"""


# For reference, the forward pass (tinyvae.layers.relu_forward):
#     out = np.maximum(x, 0)
#     cache = x                the input, not the output


def relu_backward(dout, cache):
    """dL/dx for out = max(x, 0), docs/04-gradients.md eq. (3).

    dout (B, H) is dL/d(out); cache is x (B, H). Return dx (B, H), a new array: do not modify
    dout. At x = 0 exactly, take the slope 0 (what most libraries do; the check keeps away
    from the kink).
    """
    raise NotImplementedError("relu_backward: docs/04-gradients.md eq. (3)")


if __name__ == "__main__":  # `python relu.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "relu")
