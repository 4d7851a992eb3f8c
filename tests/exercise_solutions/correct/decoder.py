"""Reference solution: decoder_backward (docs/04-gradients.md eq. (2), layer by layer)."""
from tinyvae.layers import ACTIVATIONS, dense_backward


def decoder_backward(dout, dout_log_var, cache, config):
    mlp_caches, out_cache, lv_cache = cache
    act_backward = ACTIVATIONS[config.activation].backward
    grads = {}
    dh, grads["decoder.W_out"], grads["decoder.b_out"] = dense_backward(dout, out_cache)
    if lv_cache is not None:
        dh_lv, grads["decoder.W_logvar"], grads["decoder.b_logvar"] = dense_backward(
            dout_log_var, lv_cache)
        dh = dh + dh_lv
    for i in reversed(range(len(mlp_caches))):
        dense_cache, act_cache = mlp_caches[i]
        dh, grads[f"decoder.W{i}"], grads[f"decoder.b{i}"] = dense_backward(
            act_backward(dh, act_cache), dense_cache)
    return dh, grads
