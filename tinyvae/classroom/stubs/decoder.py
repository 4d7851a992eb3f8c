"""Exercise decoder: the decoder's backward.

Write the body of decoder_backward() below, then check it with either of

    python decoder.py
    python -m tinyvae exercise check decoder

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (2): try it on paper first.
"""

from tinyvae.layers import ACTIVATIONS, dense_backward  # noqa: F401  yours to use

# For reference, the forward pass (tinyvae.vae.decoder_forward), for hidden layers i = 0..n−1:
#     a_i = h_(i−1) · W_i + b_i;  h_i = act(a_i)         h_(−1) = z          (B, H_i)
#     out = h · W_out + b_out                                                 (B, D)
#     out_log_var = h · W_logvar + b_logvar   (only for a learned variance; else None)
#     cache = (mlp_caches, out_cache, lv_cache), lv_cache None without a learned variance


def decoder_backward(dout, dout_log_var, cache, config):
    """dL/dz (B, Z) and the decoder's gradients, from dL/d(out) (B, D).

    docs/04-gradients.md eq. (2), layer by layer: walk the forward pass backwards with
    dense_backward and ACTIVATIONS[config.activation].backward. dout_log_var (B, D) or None.
    Return (dz, grads), grads a dict with a gradient for every decoder parameter:
    "decoder.W0", "decoder.b0", ..., "decoder.W_out", "decoder.b_out" (and
    "decoder.W_logvar", "decoder.b_logvar" when lv_cache is not None).
    """
    mlp_caches, out_cache, lv_cache = cache
    raise NotImplementedError("decoder_backward: docs/04-gradients.md eq. (2), layer by layer")


if __name__ == "__main__":  # `python decoder.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "decoder")
