"""The docs and the code point at each other; every pointer must land somewhere.

* every "docs/<file>.md eq. (n)" cited in tinyvae/ is a \\tag{n} in that file;
* every equation of docs/04-gradients.md names a function, and that function exists;
* every relative link and image in README.md and docs/ exists in the repository.
"""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"(docs/[\w.-]+\.md)[ ,]*eq\. \((\d+)\)")
BARE_EQ = re.compile(r"eq\. \((\d+)\)")
TAG = re.compile(r"\\tag\{(\d+)\}")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def tags(path: Path) -> set[int]:
    return {int(n) for n in TAG.findall(path.read_text(encoding="utf-8"))}


def python_sources():
    return sorted((ROOT / "tinyvae").rglob("*.py"))


def test_every_equation_cited_in_the_code_exists_in_the_docs():
    missing = []
    cited = 0
    for source in python_sources():
        for lineno, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            for doc, number in CITATION.findall(line):
                cited += 1
                target = ROOT / doc
                if not target.exists() or int(number) not in tags(target):
                    missing.append(f"{source.name}:{lineno}: {doc} eq. ({number})")
    assert cited > 20, "the core modules should cite the docs"
    assert not missing


def test_no_equation_is_cited_without_naming_its_document():
    # A bare "eq. (n)" cannot be checked; the rule is to always name the file on the same line.
    bare = []
    for source in python_sources():
        for lineno, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if len(BARE_EQ.findall(line)) > len(CITATION.findall(line)):
                bare.append(f"{source.name}:{lineno}: {line.strip()}")
    assert not bare


def gradient_equations():
    """(tag, the text from that equation to the next) for each equation of 04-gradients.md."""
    text = (ROOT / "docs" / "04-gradients.md").read_text(encoding="utf-8")
    marks = [(m.start(), int(m.group(1))) for m in TAG.finditer(text)]
    return [(n, text[start:(marks[i + 1][0] if i + 1 < len(marks) else len(text))])
            for i, (start, n) in enumerate(marks)]


def test_the_gradient_equations_are_numbered_one_to_n():
    numbers = [n for n, _ in gradient_equations()]
    assert numbers == list(range(1, len(numbers) + 1))


@pytest.mark.parametrize("number, text", gradient_equations())
def test_every_gradient_equation_names_a_function_that_exists(number, text):
    names = re.findall(r"`(\w+)\.(\w+)`", text)
    assert names, f"eq. ({number}) of docs/04-gradients.md names no function"
    for module, function in names:
        mod = importlib.import_module(f"tinyvae.{module}")
        assert hasattr(mod, function), \
            f"eq. ({number}) names tinyvae.{module}.{function}, which does not exist"


def markdown_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_image_exists(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+://|^mailto:|^#", target):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken


def test_committed_figures_are_small():
    figures = list((ROOT / "docs").rglob("*.png"))
    total = sum(f.stat().st_size for f in figures)
    assert total < 2_000_000, f"docs figures take {total} bytes; keep them to a few hundred KB"


MARKER = re.compile(r"^<!-- (output of|numbers from): ([^>]+?) -->$", re.M)


def test_every_pasted_output_and_committed_number_names_a_source_that_exists():
    # docs/README.md: pasted output sits under "<!-- output of: python examples/X.py -->" and is
    # checked by re-running X; a table under "<!-- numbers from: docs/results/Y.json -->" is
    # checked against Y. Both must point at something real.
    found = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for kind, source in MARKER.findall(page.read_text(encoding="utf-8")):
            found.append(source)
            if kind == "output of":
                script = source.split()[1] if source.startswith("python ") else source
                assert (ROOT / script).is_file(), f"{page.name}: {source} names no script"
            else:
                assert (ROOT / source).is_file(), f"{page.name}: {source} does not exist"
    assert len(found) >= 8


def test_committed_results_are_small_json():
    for path in (ROOT / "docs" / "results").rglob("*"):
        if path.is_file():
            assert path.suffix == ".json", path
            assert path.stat().st_size < 20_000, path
