"""Exercise dense: the dense layer's backward.

Write the body of dense_backward() below, then check it with either of

    python dense.py
    python -m tinyvae exercise check dense

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
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


if __name__ == "__main__":  # `python dense.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "dense")
