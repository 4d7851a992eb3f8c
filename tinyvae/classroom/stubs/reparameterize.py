"""Exercise reparameterize: the reparameterization's backward.

Write the body of reparameterize_backward() below, then check it with either of

    python reparameterize.py
    python -m tinyvae exercise check reparameterize

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (15): try it on paper first.
"""


# For reference, the forward pass (tinyvae.layers.reparameterize_forward):
#     std = np.exp(0.5 * log_var)      σ                              (B, Z)
#     z = mu + std * eps               docs/04-gradients.md eq. (14)   (B, Z)
#     cache = (std, eps)


def reparameterize_backward(dz, cache):
    """dL/dμ and dL/d log σ² for z = μ + σ ⊙ ε, docs/04-gradients.md eq. (15).

    dz (B, Z) is dL/dz; cache = (std, eps), both (B, Z). Return dmu (B, Z), dlog_var (B, Z)
    as new arrays, never dz itself (nor a view of it): an output must not share memory with
    an input. ε is data: no gradient.
    """
    std, eps = cache
    raise NotImplementedError("reparameterize_backward: docs/04-gradients.md eq. (15)")


if __name__ == "__main__":  # `python reparameterize.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "reparameterize")
