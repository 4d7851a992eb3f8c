"""Exercise tanh: tanh's backward.

Write the body of tanh_backward() below, then check it with either of

    python tanh.py
    python -m tinyvae exercise check tanh

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
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


if __name__ == "__main__":  # `python tanh.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "tanh")
