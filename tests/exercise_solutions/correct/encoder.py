"""Reference solution: encoder_backward (docs/04-gradients.md eq. (2), layer by layer)."""
from tinyvae.layers import ACTIVATIONS, dense_backward


def encoder_backward(dmu, dlog_var, cache, config):
    mlp_caches, mu_cache, lv_cache = cache
    act_backward = ACTIVATIONS[config.activation].backward
    grads = {}
    dh_mu, grads["encoder.W_mu"], grads["encoder.b_mu"] = dense_backward(dmu, mu_cache)
    dh_lv, grads["encoder.W_logvar"], grads["encoder.b_logvar"] = dense_backward(dlog_var, lv_cache)
    dh = dh_mu + dh_lv  # h feeds both heads
    for i in reversed(range(len(mlp_caches))):
        dense_cache, act_cache = mlp_caches[i]
        dh, grads[f"encoder.W{i}"], grads[f"encoder.b{i}"] = dense_backward(
            act_backward(dh, act_cache), dense_cache)
    return grads
