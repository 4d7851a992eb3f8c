"""python -m tinyvae exercise list|start|check: exercises in files the students own, graded row by row.

    list                       the ladder (dense layer ... whole VAE, Adam) and the probability exercises
    start NAME [--dir DIR]     write DIR/NAME.py, the stub to fill in (never overwrites a file)
    check [NAME ...] [--dir DIR] [--json PATH] [--seed N]
                               grade DIR/NAME.py (without NAME: every exercise file in DIR);
                               --json writes Gradescope's results.json format; --seed
                               checks the backprop rungs on another random model

DIR defaults to ./tinyvae-exercises. The grader plugs the student's function into the model in
place of tinyvae's for the length of the check (tinyvae/classroom/), so the installed package
is never edited. Exit status: 0 every exercise checked passes, 1 one does not (failed, not
implemented, an error in the student's code, or no file), 2 a bad command line or an unwritable
--json path. docs/05-classroom.md is the students' page, docs/07-instructors.md the instructors'.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tinyvae.classroom.exercises import DEFAULT_FOLDER, EXERCISES, grade, path_of, start
from tinyvae.classroom.ladder import LADDER
from tinyvae.classroom.report import format_result, gradescope_results
from tinyvae.commands.args import HelpFormatter, seed, verb_parser
from tinyvae.lab.storage.files import OutputError, write_json


def build_parser() -> argparse.ArgumentParser:
    parser = verb_parser("exercise", "Exercises in files you own, graded against finite "
                         "differences.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="list|start|check")
    verbs.add_parser("list", help="the exercises, in order", formatter_class=HelpFormatter)
    folder_help = f"the folder of the exercise files (default: ./{DEFAULT_FOLDER})"
    begin = verbs.add_parser("start", help="write the stub of an exercise (never overwrites)",
                             formatter_class=HelpFormatter)
    begin.add_argument("name", choices=list(EXERCISES), metavar="NAME",
                       help="one of: " + ", ".join(EXERCISES))
    begin.add_argument("--dir", type=Path, default=Path(DEFAULT_FOLDER), metavar="DIR",
                       help=folder_help)
    check = verbs.add_parser("check", help="grade exercise files", formatter_class=HelpFormatter)
    check.add_argument("names", nargs="*", metavar="NAME",  # checked in main: choices refuses []
                       help="exercises to grade (default: every exercise file in --dir)")
    check.add_argument("--dir", type=Path, default=Path(DEFAULT_FOLDER), metavar="DIR",
                       help=folder_help)
    check.add_argument("--json", type=Path, metavar="FILE",
                       help="also write the results as Gradescope's results.json")
    check.add_argument("--seed", type=seed, default=0, metavar="S",
                       help="seed of the random model the backprop rungs are checked on "
                            "(default: 0, gradcheck's)")
    return parser


def list_exercises() -> int:
    ladder = {e.name for e in LADDER}
    width = max(map(len, EXERCISES))
    print("The backprop ladder (each graded by the whole-VAE gradient check):")
    for i, e in enumerate(EXERCISES.values(), 1):
        if e.name not in ladder and i == len(ladder) + 1:
            print("\nBeyond backprop (graded numerically: quadrature, sampling, finite differences):")
        print(f"  {i:2d}. {e.name:<{width}}  {e.function}(): {e.title}  [{e.equation}]")
    print(f"\nStart one with `python -m tinyvae exercise start NAME` (writes ./{DEFAULT_FOLDER}/NAME.py).")
    return 0


def start_exercise(name: str, folder: Path) -> int:
    try:
        path, written = start(name, folder)
    except OSError as exc:
        print(f"exercise start: cannot write {path_of(name, folder)}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not written:
        print(f"{path} exists already; it is left as it is (delete it yourself to start over)")
        return 0
    where = "" if folder == Path(DEFAULT_FOLDER) else f" --dir {folder}"
    print(f"wrote {path}: fill in {EXERCISES[name].function}(), then run "
          f"`python -m tinyvae exercise check {name}{where}`")
    return 0


def check_exercises(names: list[str], folder: Path, json_path: Path | None, seed: int = 0) -> int:
    if not names:
        names = [name for name in EXERCISES if path_of(name, folder).exists()]
        if not names:
            print(f"exercise check: no exercise files in {folder}; `python -m tinyvae exercise start NAME` "
                  "writes one (or pass --dir)", file=sys.stderr)
            return 2
    results = []
    for name in dict.fromkeys(names):  # each once, in the order asked
        graded = grade(name, folder, seed=seed)
        text = format_result(graded, EXERCISES[name].title)
        print(text, end="\n\n")
        results.append((graded, EXERCISES[name].title, text))
    passed = sum(g.status == "passed" for g, _, _ in results)
    print(f"exercise check: {passed} of {len(results)} exercises PASS")
    if json_path is not None:
        try:
            write_json(json_path, gradescope_results(results))
        except (OutputError, OSError) as exc:
            print(f"exercise check: cannot write --json {json_path}: {exc}", file=sys.stderr)
            return 2
    return 0 if passed == len(results) else 1


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except BrokenPipeError:  # `... | head`: the reader has gone; stop quietly, as a Unix tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [name for name in getattr(args, "names", []) if name not in EXERCISES]
    if unknown:
        parser.error(f"unknown exercise {unknown[0]!r}; choose from {', '.join(EXERCISES)}")
    if args.verb == "list":
        return list_exercises()
    if args.verb == "start":
        return start_exercise(args.name, args.dir)
    return check_exercises(args.names, args.dir, args.json, args.seed)


if __name__ == "__main__":
    sys.exit(main())
