"""The classroom: teaching with the gradient check (docs/05-classroom.md, docs/07-instructors.md).

    breaks             deliberate bugs planted in one backward pass, to see the check fail
    diagnosis          why a row failed: rounding, ReLU's kink, or a bug (a sign, a factor of B,
                       a path)
    exercises          the exercises as files students own: start (write a stub), grade (check it)
    ladder             the backprop ladder: what each rung asks and how it is plugged into the model
    grader             a rung graded: the whole-VAE table, the student's gradients against finite
                       differences
    numeric            one Adam step and the KL exercises, checked numerically
    probability        the ELBO identity and the two gradient estimators, checked numerically
    report             the table a student reads, the results.json Gradescope reads
    student            loading a student's file; their errors told with their own line
    swap               a function swapped into the model for a ``with``, always restored
    stubs/             the files `exercise start` copies for the students, one per exercise

A wing of the house: it imports the core (tinyvae/*.py) and nothing else.
"""
