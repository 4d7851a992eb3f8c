"""Exercise encoder: the encoder's backward.

Write the body of encoder_backward() below, then check it with either of

    python encoder.py
    python -m tinyvae exercise check encoder

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (2): try it on paper first.
"""

from tinyvae.layers import ACTIVATIONS, dense_backward  # noqa: F401  yours to use

# For reference, the forward pass (tinyvae.vae.encoder_forward), for hidden layers i = 0..n−1:
#     a_i = h_(i−1) · W_i + b_i;  h_i = act(a_i)         h_(−1) = x          (B, H_i)
#     mu = h · W_mu + b_mu;  log_var = h · W_logvar + b_logvar                (B, Z)
#     cache = (mlp_caches, mu_cache, lv_cache), mlp_caches[i] = (dense_cache, act_cache)


def encoder_backward(dmu, dlog_var, cache, config):
    """The encoder's gradients from dL/dμ (B, Z) and dL/d log σ² (B, Z).

    docs/04-gradients.md eq. (2), layer by layer: walk the forward pass backwards with
    dense_backward and ACTIVATIONS[config.activation].backward. Return a dict with a gradient
    for every encoder parameter: "encoder.W0", "encoder.b0", ..., "encoder.W_mu",
    "encoder.b_mu", "encoder.W_logvar", "encoder.b_logvar", each of its shape.
    The gradient with respect to x itself is not needed.
    """
    mlp_caches, mu_cache, lv_cache = cache
    raise NotImplementedError("encoder_backward: docs/04-gradients.md eq. (2), layer by layer")


if __name__ == "__main__":  # `python encoder.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "encoder")
