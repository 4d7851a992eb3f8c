"""Every verb's --help in one style: `python -m tinyvae VERB` in its usage line, each default
printed once as "(default: X)", and the same metavar for the same flag in every verb."""

from __future__ import annotations

import argparse
import importlib
import re

import pytest

from tinyvae.__main__ import VERBS

METAVAR = re.compile(r"[A-Z][A-Z0-9.-]*")  # DIR, FILE, N, K, S, A-B, ...: no argparse DATA_DIR


def parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """(VERB or "VERB SUB", parser) for every verb and every sub-verb."""
    found = []
    for verb, (module, _) in VERBS.items():
        parser = importlib.import_module(module).build_parser()
        found.append((verb, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += [(f"{verb} {name}", sub) for name, sub in action.choices.items()]
    return found


PARSERS = parsers()


def entries(text: str) -> list[str]:
    """The help's entries after its usage and description: one string per argument."""
    body = text.split("\n\n", 2)[-1]
    return [block for block in re.split(r"\n  (?=\S)", "\n" + body) if block.strip()]


def test_every_verb_and_sub_verb_is_here():
    assert {name.split()[0] for name, _ in PARSERS} == set(VERBS)
    assert {"exercise list", "exercise start", "exercise check"} <= {name for name, _ in PARSERS}


@pytest.mark.parametrize("name, parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_the_usage_names_the_verb_as_a_user_types_it(name, parser):
    assert parser.format_help().startswith(f"usage: python -m tinyvae {name}")


@pytest.mark.parametrize("name, parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_each_default_is_printed_once_in_one_style(name, parser):
    for entry in entries(parser.format_help()):
        flat = " ".join(entry.split())
        assert flat.count("(default") <= 1 and "(default " not in flat, flat
        assert "(default: None)" not in flat and "(default: False)" not in flat, flat
        starts = [i for i in range(len(flat)) if flat.startswith("(default", i)]
        assert all(flat[i:i + 9] == "(default:" for i in starts), flat


@pytest.mark.parametrize("name, parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_every_value_is_named_by_a_metavar_of_the_vocabulary(name, parser):
    for action in parser._actions:
        if action.option_strings and action.nargs != 0 and action.choices is None:
            named = action.metavar is not None and METAVAR.fullmatch(action.metavar)
            assert named, (name, action.dest)


def test_the_same_flag_has_the_same_metavar_in_every_verb():
    seen: dict[str, dict[str, list[str]]] = {}
    for name, parser in PARSERS:
        for action in parser._actions:
            if action.option_strings and action.metavar is not None:
                flag = seen.setdefault(action.option_strings[-1], {})
                flag.setdefault(action.metavar, []).append(name)
    differing = {flag: metavars for flag, metavars in seen.items() if len(metavars) > 1}
    assert not differing


def test_a_default_the_formatter_prints_is_the_parsers_own():
    parser = importlib.import_module(VERBS["sample"][0]).build_parser()
    flat = " ".join(parser.format_help().split())
    assert "how many images (default: 64)" in flat
    assert "seed of the draws of z (default: 0)" in flat
    parser = importlib.import_module(VERBS["gradcheck"][0]).build_parser()
    gradcheck = " ".join(parser.format_help().split())
    assert "hidden sizes, e.g. 7 or 7,5 (default: 4,3)" in gradcheck
    assert "(default: 1e-05)" in gradcheck
