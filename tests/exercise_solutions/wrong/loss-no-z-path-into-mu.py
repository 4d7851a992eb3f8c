"""A typical wrong loss_and_grads: the path through z into μ dropped."""
import numpy as np

from tinyvae.layers import reparameterize_backward, reparameterize_forward
from tinyvae.losses import kl_standard_normal
from tinyvae.vae import (
    decoder_backward,
    decoder_forward,
    encoder_backward,
    encoder_forward,
    reconstruction_nll,
)


def loss_and_grads(params, x, eps, config, *, beta=None, terms="both"):
    beta = config.beta if beta is None else beta
    B = x.shape[0]
    w_recon = 0.0 if terms == "kl" else 1.0
    w_kl = 0.0 if terms == "recon" else beta
    mu, log_var, enc_cache = encoder_forward(params, x, config)
    z, rep_cache = reparameterize_forward(mu, log_var, eps)
    out, out_log_var, dec_cache = decoder_forward(params, z, config)
    recon, dout, dout_log_var = reconstruction_nll(out, out_log_var, x, config)
    kl, dmu_kl, dlog_var_kl = kl_standard_normal(mu, log_var)
    loss = float(np.mean(w_recon * recon + w_kl * kl))

    dout = dout * (w_recon / B)
    if dout_log_var is not None:
        dout_log_var = dout_log_var * (w_recon / B)
    dz, grads = decoder_backward(dout, dout_log_var, dec_cache, config)
    dmu_z, dlog_var_z = reparameterize_backward(dz, rep_cache)
    dmu = (w_kl / B) * dmu_kl  # the path through z forgotten
    dlog_var = dlog_var_z + (w_kl / B) * dlog_var_kl
    grads.update(encoder_backward(dmu, dlog_var, enc_cache, config))
    return loss, grads, {}
