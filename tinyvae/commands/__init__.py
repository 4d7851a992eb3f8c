"""The command lines: one module per verb of `python -m tinyvae` (the list is tinyvae/__main__.py's
VERBS), and four modules they share:

    args.py     argparse types that refuse nonsense before any work (also used by examples/)
    saved.py    what the verbs on a saved model share: the CKPT argument, loading, writing, errors
    lesson.py   the end every lesson example in examples/ shares: measure, keep, print, draw
    status.py   the exit statuses of every command (0, 1, 2, 130), and running a body under them
"""
