"""The classroom: tools for teaching with the gradient check (docs/05-classroom.md).

    breaks      deliberate bugs planted in one backward pass, to see the check fail
    diagnosis   why a row failed: rounding on a tiny entry, a real bug, or ReLU's kink

A wing of the house: it imports the core (tinyvae/*.py) and nothing else.
"""
