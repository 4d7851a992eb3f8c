"""python -m tinyvae exercise list|start|check|grade: exercises in files the students own, graded
row by row.

    list                       the ladder (dense layer ... whole VAE, Adam) and the probability
                               exercises
    start NAME [--dir DIR]     write DIR/NAME.py, the stub to fill in (never overwrites a file)
    check [NAME ...] [--dir DIR] [--json PATH] [--hint] [GRADING OPTIONS]
                               grade DIR/NAME.py (without NAME: every exercise file in DIR, or
                               the course file's exercises); --json writes Gradescope's results.json
    grade SUBMISSIONS [NAME ...] [--csv PATH] [--json-dir DIR] [GRADING OPTIONS]
                               grade a class: SUBMISSIONS/STUDENT/.../NAME.py for every student
    GRADING OPTIONS: --seed N, --course FILE, --time-limit S, --memory-limit MB, --jobs N

DIR defaults to ./tinyvae-exercises. Each exercise is graded in a process of its own, with a time
and a memory limit; the student's code only computes, the grader compares (tinyvae/classroom/).
Exit status of check: 0 exactly when every exercise checked passes; 1 when one does not (failed,
not implemented, an error or a limit in the student's code, or no file) or when the --json file
cannot be written after grading (a full disk); 2 a bad command line or a --json/--csv/--course
that cannot be used, refused before grading; 130 interrupted (the JSON is written all the same,
the exercises not graded marked so). grade exits 0 once the class is graded and written, 1 when
its --csv or --json-dir files cannot be written.
docs/05-classroom.md is the students' page, docs/07-instructors.md the instructors'.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from tinyvae.classroom.course import DEFAULT, CourseError, load
from tinyvae.classroom.exercises import (
    DEFAULT_FOLDER,
    EXERCISES,
    Grading,
    Options,
    cores,
    path_of,
    start,
)
from tinyvae.classroom.ladder import LADDER
from tinyvae.classroom.report import (
    class_csv,
    format_result,
    gradescope_results,
    refuse_target,
    write_atomically,
    write_json,
)
from tinyvae.classroom.sandbox import Limits
from tinyvae.commands.args import HelpFormatter, verb_parser


def seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is an integer >= 0, got {text}")
    return value


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def grading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed, metavar="S",
                        help="seed of the random model the ladder is checked on (default: 0, "
                             "or the course file's secret seed)")
    parser.add_argument("--course", type=Path, metavar="FILE",
                        help="the course file: exercises, weights, partial "
                        "credit, visibility, a secret seed, limits (docs/07-instructors.md)")
    parser.add_argument("--time-limit", type=positive, metavar="SECONDS",
                        help="wall-clock seconds per exercise (default: 10)")
    parser.add_argument("--memory-limit", type=positive, metavar="MB",
                        help="memory per exercise (default: 512)")
    parser.add_argument("--jobs", type=int, default=cores(), metavar="N",
                        help=f"exercises graded at once (default: the cores there are, {cores()})")


def build_parser() -> argparse.ArgumentParser:
    parser = verb_parser("exercise", "Exercises in files you own, graded against finite "
                         "differences.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="list|start|check|grade")
    verbs.add_parser("list", help="the exercises, in order", formatter_class=HelpFormatter)
    folder_help = f"the folder of the exercise files (default: ./{DEFAULT_FOLDER})"
    begin = verbs.add_parser("start", help="write the stub of an exercise (never overwrites)",
                             formatter_class=HelpFormatter)
    begin.add_argument("name", choices=list(EXERCISES), metavar="NAME",
                       help="one of: " + ", ".join(EXERCISES))
    begin.add_argument("--dir", type=Path, default=Path(DEFAULT_FOLDER), metavar="DIR",
                       help=folder_help)
    check = verbs.add_parser("check", help="grade exercise files", formatter_class=HelpFormatter)
    # checked in run: choices refuses an empty list
    check.add_argument("names", nargs="*", metavar="NAME",
                       help="exercises to grade (default: every exercise file in --dir)")
    check.add_argument("--dir", type=Path, default=Path(DEFAULT_FOLDER), metavar="DIR",
                       help=folder_help)
    check.add_argument("--json", type=Path, metavar="FILE",
                       help="also write the results as Gradescope's results.json")
    check.add_argument("--hint", action="store_true",
                       help="under a failure: the equation to start from, and a nudge")
    grading_options(check)
    grade = verbs.add_parser("grade", help="grade a folder of students' folders",
                             formatter_class=HelpFormatter)
    grade.add_argument("submissions", type=Path, metavar="SUBMISSIONS",
                       help="a folder holding one folder per student")
    grade.add_argument("names", nargs="*", metavar="NAME",
                       help="exercises to grade (default: the course file's, "
                       "or every exercise some student has a file for)")
    grade.add_argument("--csv", type=Path, metavar="FILE", help="write the class's scores as CSV")
    grade.add_argument("--json-dir", type=Path, metavar="DIR",
                       help="write STUDENT.json (Gradescope's format) here")
    grading_options(grade)
    return parser


def list_exercises() -> int:
    ladder = {e.name for e in LADDER}
    width = max(map(len, EXERCISES))
    print("The backprop ladder (each graded by the whole-VAE gradient check):")
    for i, e in enumerate(EXERCISES.values(), 1):
        if e.name not in ladder and i == len(ladder) + 1:
            print("\nBeyond backprop "
                  "(graded numerically: quadrature, sampling, finite differences):")
        print(f"  {i:2d}. {e.name:<{width}}  {e.function}(): {e.title}  [{e.equation}]")
    print(f"\nStart one with `python -m tinyvae exercise start NAME` "
          f"(writes ./{DEFAULT_FOLDER}/NAME.py).")
    return 0


def start_exercise(name: str, folder: Path) -> int:
    try:
        path, written = start(name, folder)
    except OSError as exc:
        print(f"exercise start: cannot write {path_of(name, folder)}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    if not written:
        print(f"{path} exists already; it is left as it is (delete it yourself to start over)")
        return 0
    where = "" if folder == Path(DEFAULT_FOLDER) else f" --dir {folder}"
    print(f"wrote {path}: fill in {EXERCISES[name].function}(), then run "
          f"`python -m tinyvae exercise check {name}{where}`")
    return 0


def options_of(args, course) -> Options:
    secret = args.seed is None and course.seed is not None
    limits = Limits(args.time_limit or course.time_limit or Limits().seconds,
                    args.memory_limit or course.memory_limit or Limits().memory_mb)
    return Options(seed=args.seed if args.seed is not None else course.seed or 0, limits=limits,
                   secret=secret)


def check_exercises(args, course) -> int:
    names = args.names or list(course.exercises) or [n for n in EXERCISES
                                                     if path_of(n, args.dir).exists()]
    if not names:
        print(f"exercise check: no exercise files in {args.dir}; "
              "`python -m tinyvae exercise start NAME` "
              "writes one (or pass --dir)", file=sys.stderr)
        return 2
    names = list(dict.fromkeys(names))  # each once, in the order asked
    began = time.monotonic()
    grading = Grading([(name, path_of(name, args.dir)) for name in names],
                      options_of(args, course), args.jobs)
    results, interrupted = [], False
    try:
        for graded in grading.results():
            exercise = EXERCISES[graded.name]
            text = format_result(graded, exercise.title, function=exercise.function,
                                 equation=exercise.equation,
                                 hints=args.hint)
            print(text, end="\n\n", flush=True)
            results.append((graded, exercise.title, text))
    except KeyboardInterrupt:
        interrupted = True
        for graded in grading.stop()[len(results):]:
            results.append((graded, EXERCISES[graded.name].title,
                            f"exercise {graded.name}: {graded.note}"))
        print("exercise check: interrupted; the exercises not graded are marked so",
              file=sys.stderr)
    finally:
        grading.close()
    passed = sum(g.status == "passed" for g, _, _ in results)
    print(f"exercise check: {passed} of {len(results)} exercises PASS")
    if args.json is not None:
        try:
            write_json(args.json, gradescope_results(results, course, time.monotonic() - began))
        except OSError as exc:
            # the grading is done, the file is not: the work failed (1), not refused (2)
            print(f"exercise check: cannot write --json {args.json}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 1
    return 130 if interrupted else 0 if passed == len(results) else 1


def submissions_of(folder: Path, names: list[str]) -> tuple[list[tuple[str, dict]], list[str]]:
    """[(student, {exercise: its file, or the reason there is none})] and the exercises to grade."""
    students = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    found = []
    for student in students:
        files: dict[str, list[Path]] = {}
        for path in sorted(student.rglob("*.py")):
            if path.stem in EXERCISES and not any(part.startswith(".")
                                                  for part in path.relative_to(student).parts):
                files.setdefault(path.stem, []).append(path)
        found.append((student.name, files))
    names = names or [n for n in EXERCISES if any(n in files for _, files in found)]
    return found, names


def progress(done: int, total: int, began: float) -> None:
    line = f"graded {done} of {total} ({100 * done // total} %), {time.monotonic() - began:.0f} s"
    if sys.stderr.isatty():
        print("\r" + line, end="" if done < total else "\n", file=sys.stderr, flush=True)
    elif done == total or done % max(1, total // 10) == 0:
        print(line, file=sys.stderr, flush=True)


def grade_class(args, course) -> int:
    """Every student's folder graded, each exercise in its own child, with a progress line."""
    if not args.submissions.is_dir():
        print(f"exercise grade: {args.submissions} is not a folder", file=sys.stderr)
        return 2
    students, names = submissions_of(args.submissions,
                                     list(dict.fromkeys(args.names or course.exercises)))
    if not students or not names:
        print(f"exercise grade: no student folders with exercise files in {args.submissions}",
              file=sys.stderr)
        return 2
    tasks, notes = [], {}
    for student, files in students:
        for name in names:
            paths = files.get(name, [])
            if len(paths) > 1:
                notes[student, name] = f"{len(paths)} files named {name}.py: " + ", ".join(
                    str(p.relative_to(args.submissions)) for p in paths)
            tasks.append((name, paths[0] if len(paths) == 1
                          else args.submissions / student / f"{name}.py"))
    began = time.monotonic()
    grading = Grading(tasks, options_of(args, course), args.jobs,
                      lambda done, total: progress(done, total, began))
    try:
        graded = list(grading.results())
    except KeyboardInterrupt:
        graded = grading.stop()
        print("\nexercise grade: interrupted; the exercises not graded are marked so",
              file=sys.stderr)
    finally:
        grading.close()
    by_student = []
    for i, (student, _) in enumerate(students):
        own = graded[i * len(names):(i + 1) * len(names)]
        own = [g._replace(status="error", rows=[], note=notes[student, g.name])
               if (student, g.name) in notes else g
               for g in own]
        by_student.append((student, own))
    return write_class(args, course, names, by_student, time.monotonic() - began)


def write_class(args, course, names, by_student, seconds) -> int:
    passed = sum(g.status == "passed" for _, own in by_student for g in own)
    print(f"exercise grade: {len(by_student)} students, {len(names)} exercises, {passed} of "
          f"{len(by_student) * len(names)} pass ({seconds:.1f} s)")
    try:
        if args.csv is not None:
            write_atomically(args.csv, class_csv(by_student, names, course))
        if args.json_dir is not None:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            for student, own in by_student:
                results = [(g, EXERCISES[g.name].title, format_result(g, EXERCISES[g.name].title,
                            function=EXERCISES[g.name].function)) for g in own]
                write_json(args.json_dir / f"{student}.json",
                           gradescope_results(results, course, sum(g.seconds for g in own)))
    except OSError as exc:
        print(f"exercise grade: cannot write the results: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
        return run(argv)
    except BrokenPipeError:  # `... | head`: the reader has gone; stop quietly, as a Unix tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (a platform's timeout): stop as Ctrl-C does, results written


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
    for flag in ("json", "csv"):
        reason = getattr(args, flag, None) and refuse_target(getattr(args, flag))
        if reason:
            print(f"exercise {args.verb}: cannot write --{flag} {getattr(args, flag)}: {reason}",
                  file=sys.stderr)
            return 2
    try:
        course = load(args.course, EXERCISES) if args.course else DEFAULT
    except CourseError as exc:
        print(f"exercise {args.verb}: {exc}", file=sys.stderr)
        return 2
    if args.verb == "check":
        return check_exercises(args, course)
    return grade_class(args, course)


if __name__ == "__main__":
    sys.exit(main())
