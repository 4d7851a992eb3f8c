"""Learning-rate schedules: piecewise constant, [[first epoch, lr], ...], kept in checkpoints.

The runner (runner.py) sets the optimizer's rate at the start of every epoch from the
schedule, and a resumed run is refused unless its schedule is the same: the schedule is one
of the run's settings, like the batch size.
"""

from __future__ import annotations

from .._checks import finite_real, nonnegative_int


def check_schedule(schedule) -> list[list] | None:
    """[[first epoch, lr], ...] as JSON-able lists, checked: epochs rise from 1, rates > 0."""
    if schedule is None:
        return None
    pairs = [[nonnegative_int("lr_schedule epoch", int(e) if float(e).is_integer() else e),
              finite_real("lr_schedule lr", lr, minimum=0, strict=True)] for e, lr in schedule]
    epochs = [e for e, _ in pairs]
    if not pairs or epochs[0] != 1 or any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise ValueError(f"lr_schedule must start at epoch 1 with rising epochs, got {schedule!r}")
    return pairs


def scheduled_lr(schedule: list[list], epoch: int) -> float:
    """The learning rate of `epoch` under a piecewise-constant schedule [[first epoch, lr], ...]."""
    return [lr for first, lr in schedule if first <= epoch][-1]
