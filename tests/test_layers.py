"""Imports point down: cli -> jobs -> data/models/losses -> geometry/io, and no module imports itself in a circle.

The layer of every module is listed here and in DEVELOPERS.md ("Layers"). A
new module must be given a layer before this test passes, which is the point:
adding one is a decision about what it may import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "selfdepth"

# Higher imports lower or equal, never higher. The longest matching prefix decides.
LAYERS: dict[str, int] = {
    "selfdepth": 5,  # the package's public API (__init__) re-exports from anywhere below
    "selfdepth.cli": 5,  # argument parsing only
    "selfdepth.study": 4,  # jobs that run other jobs
    "selfdepth.demo": 4,
    "selfdepth.study_report": 4,
    "selfdepth.train": 3,  # jobs
    "selfdepth.module": 3,  # the LightningModule that train runs
    "selfdepth.evaluate": 3,
    "selfdepth.evaluate_pose": 3,
    "selfdepth.predict": 3,
    "selfdepth.live": 3,
    "selfdepth.app": 3,  # the web app: a job over inference, predict and point clouds
    "selfdepth.export": 3,
    "selfdepth.monodepth2": 3,
    "selfdepth.inference": 2,  # what jobs share: the runtime model and the config
    "selfdepth.config": 2,
    "selfdepth.data": 1,  # data sets, networks, losses, point clouds
    "selfdepth.models": 1,
    "selfdepth.losses": 1,
    "selfdepth.pointcloud": 1,
    "selfdepth.pose_refine": 1,  # direct alignment of a motion: geometry and the photometric loss
    "selfdepth.geometry": 0,  # pure maths and file formats
    "selfdepth.io": 0,
    "selfdepth.hardware": 0,
    "selfdepth.int8_graph": 0,  # rewrites of a quantised ONNX graph
    "selfdepth._version": 0,
}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = ("selfdepth",) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """The layer of ``module`` (longest listed prefix); KeyError for an unlisted module."""
    best = max((name for name in LAYERS if module == name or module.startswith(name + ".")), key=len, default=None)
    if best is None or (best == "selfdepth" and module != "selfdepth"):
        raise KeyError(f"{module} has no layer: add it to LAYERS in tests/test_layers.py and to DEVELOPERS.md")
    return LAYERS[best]


def imports_of(source: str, module: str, is_package: bool, known: set[str] = frozenset()) -> set[str]:
    """Every ``selfdepth`` module that ``source`` imports, at top level or inside functions.

    ``from P import name`` counts as importing ``P.name`` when that is a module in ``known``
    (or when P is given relatively with no module: ``from . import geometry``), else ``P``.
    """
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known or not node.module else target)
    return {name for name in found if name == "selfdepth" or name.startswith("selfdepth.")}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    paths = sorted(root.rglob("*.py"))
    known = {module_name(path, root) for path in paths}
    graph = {}
    for path in paths:
        name = module_name(path, root)
        graph[name] = imports_of(path.read_text(), name, path.name == "__init__.py", known) - {name}
    return graph


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that point up a layer, and import cycles (a package importing its own submodules is not one)."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if layer(target) > layer(module):
                found.append(f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)}), which is above it")
    # Cycles: depth-first search over module -> module edges. An edge from a package to its own
    # submodule is how packages re-export, and the submodule importing a sibling goes through the
    # package, so those edges are left out.
    edges = {m: {t for t in ts if t in graph and not t.startswith(m + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                found.append("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_every_module_has_a_layer():
    for module in import_graph():
        layer(module)


def test_imports_point_down_and_never_in_a_circle():
    problems = violations(import_graph())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "graph, expected",
    [
        # A data set reaching up into a job (data/kitti.py once imported predict.save_depth_png).
        ({"selfdepth.data.kitti": {"selfdepth.predict"}, "selfdepth.predict": set()}, "above it"),
        # Two jobs importing each other (export and predict once did).
        ({"selfdepth.export": {"selfdepth.predict"}, "selfdepth.predict": {"selfdepth.export"}}, "import cycle"),
        # A longer circle within one layer.
        ({"selfdepth.data.a": {"selfdepth.data.b"}, "selfdepth.data.b": {"selfdepth.data.c"},
          "selfdepth.data.c": {"selfdepth.data.a"}}, "import cycle"),
    ],
)
def test_the_check_catches_the_cases_it_exists_for(graph, expected):
    problems = violations(graph)
    assert len(problems) >= 1 and expected in problems[0], problems


def test_relative_and_in_function_imports_are_seen():
    source = "def f():\n    from . import geometry\n    from .io import save_json\nimport selfdepth.models\n"
    assert imports_of(source, "selfdepth.train", False) == {"selfdepth.geometry", "selfdepth.io", "selfdepth.models"}
    known = {"selfdepth.io"}
    assert imports_of("from selfdepth import io, __version__\n", "selfdepth.train", False, known) == {"selfdepth.io", "selfdepth"}
    assert imports_of("from .render import x\n", "selfdepth.data.synthetic", True) == {"selfdepth.data.synthetic.render"}


def test_an_unlisted_module_is_an_error():
    with pytest.raises(KeyError, match="has no layer"):
        layer("selfdepth.newthing")
