"""The house keeps its shape: the lecture's core imports nothing above it, and each wing only
what is below it. Read from the import statements themselves, so the rule outlives any one change.

    core       tinyvae/*.py            numpy and the standard library; read first
    speed      tinyvae/speed/          the core
    classroom  tinyvae/classroom/      the core
    lab        tinyvae/lab/            the core, the speed wing and its own rooms (datasets/, storage/,
                                       training/, figures/, bench/; and matplotlib for figures),
                                       never a command line
    commands   tinyvae/commands/       anything; only a command imports a command (args.py, saved.py
                                       and lesson.py are theirs to share, and examples/ use them)
    front door tinyvae/__init__.py, tinyvae/__main__.py

An import under `if __name__ == "__main__":` is not counted: it runs only when that file is
itself the program (`python -m tinyvae gradcheck` hands over to its command that way).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FUNCTION_NOTE_LINES, MODULE_NOTE_LINES, large_rooms

PACKAGE = Path(__file__).resolve().parent.parent / "tinyvae"
WINGS = ("speed", "classroom", "lab", "commands")
ALLOWED = {  # layer -> the tinyvae layers it may import
    "core": {"core"},
    "speed": {"core", "speed"},
    "classroom": {"core", "classroom"},
    "lab": {"core", "speed", "lab"},
    "commands": {"core", "speed", "classroom", "lab", "commands"},
    "front door": {"core", "speed", "classroom", "lab"},
}
THIRD_PARTY = {"core": {"numpy"}, "speed": {"numpy"}, "classroom": {"numpy"}, "lab": {"numpy", "matplotlib", "threadpoolctl"},
               "commands": {"numpy", "matplotlib"}, "front door": {"numpy"}}


def module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if module in ("tinyvae", "tinyvae.__main__"):
        return "front door"
    if len(parts) > 1 and parts[1] in WINGS:
        return parts[1]
    return "core"


def is_main_guard(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def imports_of(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Every module the file imports (relative imports resolved), outside __main__ guards."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node):
        if is_main_guard(node):
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            submodules = [f"{target}.{alias.name}" for alias in node.names
                          if (root / Path(*f"{target}.{alias.name}".split("."))).with_suffix(".py").exists()
                          or (root / Path(*f"{target}.{alias.name}".split(".")) / "__init__.py").exists()]
            # `from . import vae` imports the module tinyvae.vae; `from .vae import f` imports tinyvae.vae
            found.extend(submodules if len(submodules) == len(node.names) else [target, *submodules])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def violations(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    layer = layer_of(module_name(path, root))
    wrong = []
    for target in imports_of(path, root):
        top = target.split(".")[0]
        if top == "tinyvae":
            if target.startswith("tinyvae.commands") and layer != "commands" or target == "tinyvae.__main__":
                wrong.append(f"{target} (only a command imports a command line or an entry point)")
            elif target == "tinyvae":
                if layer != "front door":
                    wrong.append("tinyvae (the package's front door imports the modules, not the reverse)")
            elif layer_of(target) not in ALLOWED[layer]:
                wrong.append(f"{target} ({layer_of(target)} is above {layer})")
        elif top not in sys.stdlib_module_names and top not in THIRD_PARTY[layer]:
            wrong.append(f"{target} (a {layer} module uses only {sorted(THIRD_PARTY[layer])} and the stdlib)")
    return wrong


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_each_module_imports_only_what_its_layer_allows(path):
    assert not violations(path), f"{path.relative_to(PACKAGE.parent)} imports " + "; ".join(violations(path))


def test_the_checker_catches_a_core_module_that_imports_a_wing(tmp_path):
    # The rule must be able to fail: a core file importing the lab, a module importing a command,
    # a core file using matplotlib are each caught; an import under the __main__ guard is not.
    training = tmp_path / "tinyvae" / "lab" / "training"
    training.mkdir(parents=True)
    for init in (training.parent / "__init__.py", training / "__init__.py", training / "runner.py"):
        init.write_text("")
    core = tmp_path / "tinyvae" / "layers.py"
    core.write_text("import numpy\nfrom .lab.training import runner\nimport matplotlib.pyplot\n"
                    "from tinyvae.commands import train\n"
                    "if __name__ == '__main__':\n    from tinyvae.commands.gradcheck import main\n")
    found = violations(core, tmp_path)
    assert [v.split()[0] for v in found] == ["tinyvae.lab.training.runner", "matplotlib.pyplot",
                                             "tinyvae.commands"]
    for module in ("vae.py", "speed/__init__.py", "speed/step.py", "lab/figures/__init__.py"):
        (tmp_path / "tinyvae" / module).parent.mkdir(exist_ok=True)
        (tmp_path / "tinyvae" / module).write_text("")
    wing = tmp_path / "tinyvae" / "lab" / "figures" / "plots.py"
    wing.write_text("import matplotlib\nfrom ... import vae\nfrom ...speed import step\nfrom ..training import runner\n")
    assert violations(wing, tmp_path) == []
    wing.write_text("from ...commands import saved\nfrom tinyvae.commands.args import seed\n")
    assert [v.split()[0] for v in violations(wing, tmp_path)] == ["tinyvae.commands", "tinyvae.commands.args"]


def test_the_lab_imports_no_command_line():
    # The lab serves the commands, the examples and a notebook alike: parsing arguments and
    # turning errors into exit statuses is the commands' work (tinyvae/commands/), and a lab
    # module never reaches up to them, nor parses a command line of its own.
    lab = [path for path in SOURCES if layer_of(module_name(path)) == "lab"]
    assert len(lab) > 20
    wrong = sorted(f"{path.relative_to(PACKAGE.parent)}: {target}" for path in lab for target in imports_of(path)
                   if target.startswith("tinyvae.commands") or target.split(".")[0] == "argparse")
    assert not wrong


def test_importing_the_core_loads_no_wing_no_network_and_no_plotting():
    code = ("import sys, tinyvae, tinyvae.train, tinyvae.evaluate, tinyvae.gradcheck; "
            "print(' '.join(sorted(m for m in sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert {"tinyvae", "tinyvae.vae", "tinyvae.train"} <= loaded
    unwanted = sorted(m for m in loaded if m.startswith(("tinyvae.lab", "tinyvae.speed", "tinyvae.commands",
                                                          "matplotlib", "urllib.request", "http.client")))
    assert not unwanted


def test_the_size_notes_name_a_large_module_and_a_long_function(tmp_path):
    # Sizes are not limits (judgement decides, ruff keeps the small things); the test run's
    # summary lists what is past the note sizes, and this shows the listing works.
    big = tmp_path / "big.py"
    big.write_text("x = 1\n" * (MODULE_NOTE_LINES + 1) + "def f():\n" + "    y = 1\n" * FUNCTION_NOTE_LINES)
    notes = large_rooms([big], tmp_path)
    assert any(n.startswith("big.py:") and "lines" in n for n in notes) and any("f()" in n for n in notes)
