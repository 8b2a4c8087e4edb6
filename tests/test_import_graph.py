"""Issue 16: no two of rnnkern's modules import each other, directly or round a longer circle.

Read from the source (every ``import`` and ``from ... import``, those inside functions too: an import
deferred into a function is how a circle hides), not from sys.modules, so a circle fails here even
where no test runs the code that closes it.
"""

import ast
import pathlib

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"


def _modules(src=SRC):
    """{dotted name: path} of every module of the package (a package is its __init__.py)."""
    modules = {}
    for path in (src / "rnnkern").rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name, path, modules):
    """The package's modules that ``name`` imports (``from pkg import mod`` counts as mod, ``from mod
    import x`` as mod)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            origin = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin)
    return {m for m in found if m in modules and m != name}


def import_circles(src=SRC):
    """The circles among the package's imports: lists of module names, each a strongly connected
    component of the import graph with more than one module (Tarjan's algorithm)."""
    modules = _modules(src)
    graph = {name: sorted(_imports(name, path, modules)) for name, path in modules.items()}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return circles


def test_no_module_imports_itself_round_a_circle():
    assert import_circles() == []


def test_a_circle_through_a_deferred_import_is_found(tmp_path):
    """What _bench/variants.py and torch_variants.py were: one imported the other inside a function."""
    package = tmp_path / "rnnkern"
    (package / "_bench").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "_bench" / "__init__.py").write_text("from .a import build\n")
    (package / "_bench" / "a.py").write_text("def build():\n    from . import b\n    return b.make()\n")
    (package / "_bench" / "b.py").write_text("from .a import build\n\ndef make():\n    return build\n")
    assert import_circles(tmp_path) == [["rnnkern._bench.a", "rnnkern._bench.b"]]
