"""Exercise adam: one Adam step.

Write the body of adam_update() below, then check it with either of

    python adam.py
    python -m tinyvae exercise check adam

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is Kingma & Ba (2015), Algorithm 1: try it on paper first.
"""


def adam_update(theta, g, state, t, lr, beta1, beta2, eps):
    """One Adam step for one parameter array, IN PLACE (Kingma & Ba 2015, Algorithm 1).

        m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²         (running moments; start at 0)
        m̂ = m / (1 − β1ᵗ);   v̂ = v / (1 − β2ᵗ)                  (bias correction)
        θ ← θ − lr · m̂ / (√v̂ + ε)

    theta, g: arrays of one shape; state = {"m": array, "v": array} of that shape, zero before
    the first step; t = 1 on the first step. Overwrite theta, state["m"] and state["v"]
    (e.g. theta -= ...), never rebind them: the optimizer holds those very arrays.
    """
    raise NotImplementedError("adam_update: Kingma & Ba (2015), Algorithm 1")


if __name__ == "__main__":  # `python adam.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "adam")
