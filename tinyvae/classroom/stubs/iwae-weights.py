"""Exercise iwae-weights: the importance weights of L_K, normalized stably.

Write the body of normalized_weights() below, then check it with either of

    python iwae-weights.py
    python -m tinyvae exercise check iwae-weights

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE trained on the importance-weighted bound, with K = 5
samples of z per image, in place of tinyvae's own, compares every gradient of the model with
central finite differences, and explains what fails. It also calls your function on its own,
on log-weights far from 0. Your function runs in a process of its own, on inputs it must not
change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (19): try it on paper first.
"""

import numpy as np  # noqa: F401  (you will need it)

# For reference, where the model uses it (tinyvae.vae.iwae_loss_and_grads):
#     log_w = log p(x|z) + log p(z) − log q(z|x)       (B, K)  docs/04-gradients.md eq. (18)
#     L_K = log_mean_exp(log_w, axis=1)                (B,)    log (1/K) Σ_i w_i
#     dlog_w = -normalized_weights(log_w, axis=1) / B  (B, K)  the loss is −(1/B) Σ_b L_K


def normalized_weights(log_w, axis=0):
    """w̃_i = w_i / Σ_j w_j along `axis`, from log-weights: docs/04-gradients.md eq. (19).

        ∂ L_K / ∂ log w_i = w̃_i,   L_K = log (1/K) Σ_j e^(log w_j)

    log_w: an array of any shape, in the model (B, K) with axis=1; returns w̃ of the same
    shape, a new array (never log_w itself, nor a view of it): it must not share memory with
    an input. Along `axis` the entries of w̃ are >= 0 and sum to 1.

    The log-weights of a digit are around −100 and may lie hundreds apart. In float64, e^x
    underflows to 0 below x ≈ −745 and overflows to inf above 709 (in float32, below −104 and
    above 88): compute w̃ so that neither can happen. The check tries log w near −1000 and +1000.
    """
    raise NotImplementedError("normalized_weights: docs/04-gradients.md eq. (19)")


if __name__ == "__main__":  # `python iwae-weights.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "iwae-weights")
