"""`exercise check --hint`: the equation to start from,
and a nudge for the pattern the check found.

Never the answer: the forward pass the gradient is derived from, where the lecture derives it,
and one sentence aimed at the mistake the failing rows point to (diagnosis.py names it).
"""

from __future__ import annotations

FORWARD = {  # exercise -> the forward pass (or the quantity) the function is derived from
    "dense": "out = x·W + b",
    "relu": "out = max(x, 0), with the input x in the cache",
    "tanh": "out = tanh(x), with the output tanh(x) in the cache",
    "softplus": "out = log(1 + e^x), with the input x in the cache",
    "bernoulli": "nll = Σ_d [max(l, 0) − x·l + log(1 + e^(−|l|))]",
    "gaussian": "nll = Σ_d ½ [(x − m)²/σ² + log σ² + log 2π]",
    "gaussian-learned": "nll = Σ_d ½ [(x − m)² e^(−s) + s + log 2π]",
    "kl": "KL = ½ Σ_j (μ_j² + e^(s_j) − 1 − s_j), with s = log σ²",
    "reparameterize": "z = μ + e^(½ log σ²) ⊙ ε",
    "encoder": "x → hidden layers → two heads, μ and log σ², that read the same last hidden layer",
    "decoder": "z → hidden layers → the output head (and a log σ² head for a learned variance)",
    "loss": "loss = (1/B) Σ_i [recon_i + β KL_i], with μ and log σ² each reaching it two ways",
    "iwae-weights": "L_K = log (1/K) Σ_j e^(log w_j), whose gradient in log w_i is w̃_i",
    "adam": "m ← β1 m + (1 − β1) g; v ← β2 v + (1 − β2) g²; θ ← θ − lr m̂ / (√v̂ + ε)",
    "discrete-kl": "KL(P ‖ Q) = Σ_x P(x) log(P(x)/Q(x))",
    "gaussian-kl": "KL(q ‖ p) = E_q[log q(z) − log p(z)]",
    "kl-monte-carlo": "KL = E_q[log q(z) − log p(z)], estimated by a mean over samples of q",
    "elbo-identity": "ELBO = E_q[log p(x|z)] + E_q[log p(z)] − E_q[log q(z)]",
    "estimators": "d/dμ E[f(z)] = E[f(z) (z − μ)/σ²] = E[f'(μ + σ ε)]",
}

NUDGES = {  # a part of a pattern's key -> the nudge
    "sign": "A sign is flipped: which way does the loss move when this value grows?",
    "2+1": "A ½ is missing: e^(s/2) differentiates to ½ e^(s/2), and ½ u² to u.",
    "2-1": "A ½ too many: ½ u² differentiates to u, not ½ u.",
    "B+1": "The loss is the batch mean (1/B) Σ_i: each example's gradient carries the 1/B "
           "exactly once.",
    "B-1": "A parameter every example shares (a bias) collects the sum of their gradients, "
           "not their mean.",
    "σ+2": "The quadratic term is (x − m)²/(2σ²): its derivative keeps the 1/σ².",
    "σ+1": "Divide by the variance σ², not by the standard deviation σ.",
    "σ-1": "One 1/σ too many: the derivative of (x − m)²/(2σ²) has σ² below, once.",
    "σ-2": "One 1/σ² too many: the derivative of (x − m)²/(2σ²) has σ² below, once.",
    "path": "A value that feeds two computations gets the sum of both gradients: "
            "which path is missing?",
    "output": "One output is all zeros: is it computed, and returned in its place?",
    "no-path": "A gradient reaches a parameter the loss does not depend on: "
               "follow the forward pass.",
    "transpose": "Write each array's shape next to the formula: (B, I)ᵀ·(B, O) is (I, O).",
    "factor": "A constant factor is off: compare your formula with the derivation term by term.",
    "none": "Check what the cache holds (the input, or the output?), "
            "and each term against the derivation.",
    "finite": "e^x overflows above x ≈ 709 and underflows below −745: w̃ does not change when "
              "every log w along the axis moves by the same amount. Which amount keeps e^x ≤ 1?",
    "negative": "A weight w = e^(log w) is never negative, and neither is w̃ = w / Σ_j w_j.",
    "axis": "Take the maximum and the sum along the axis you are given, with keepdims=True.",
    "mean": "The 1/K of the mean in L_K cancels in its derivative: divide by the weights' sum, "
            "not by their mean.",
    "unnormalized": "w̃ divides each weight by the sum of the weights along the axis: "
                    "its entries sum to 1.",
    "rule": "Compute a new array (dout * ..., not dout[...] = ...), and return it, never an input.",
}


def hint(name: str, equation: str, pattern: str) -> str:
    """The hint for exercise ``name`` whose most informative failure has the key ``pattern``
    ("B+1,sign", ...)."""
    nudges = [NUDGES[key] for key in pattern.split(",") if key in NUDGES]
    text = f"hint: start from {FORWARD[name]} ({equation})."
    return text + ("\n  " + "\n  ".join(nudges) if nudges else "")
