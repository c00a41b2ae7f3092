"""No import circle in app/ or model_server/ (issue 25): every import counts, at the top,
inside a function or under TYPE_CHECKING, so that each module can be read (and changed)
knowing only the ones below it."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "model_server")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of our packages it imports (a package's __init__ is its own
    module, reached when a name is taken from it, not when a submodule is)."""
    paths = {module_name(p): p for d in PACKAGES for p in (ROOT / d).rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[:len(up) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                # `from package import module` imports that module; any other name, the
                # module (or package) it is taken from
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t in paths and t != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), as a sorted list."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "app.transport" in graph["app.factory"]                  # from .transport import ...
    assert "app.scheduler" in graph["app.registry"]                   # from .scheduler import Trainer
    assert "model_server.pins" in graph["app.socketio_internals"]   # from model_server.pins import ...
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_app_or_model_server():
    assert cycles(import_graph()) == []


# What the engine may write besides its own objects' fields (self): its row store, a
# frame it builds, a tensor's rows and a parameter's gradient. A run reaches the engine
# only as a RunHandle (model_server/engine/handle.py), whose methods are the one way back.
ENGINE = ("model_server/bucket.py", "model_server/snapshot.py", "model_server/frames.py", "model_server/engine")
ENGINE_OWN = {"self", "store", "fr", "t", "theta"}


def attribute_writes(path: Path) -> list[tuple[int, str, str]]:
    """(line, the object's name, the target) of every attribute assignment, and setattr call."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr":
            out.append((node.lineno, ast.unparse(node.args[0]), ast.unparse(node)))
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        while targets:
            target = targets.pop()
            if isinstance(target, (ast.Tuple, ast.List)):
                targets.extend(target.elts)
                continue
            written, base = target, target  # x.a = ..., x.a[i] = ..., x[i].a = ...
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                written = base if isinstance(base, ast.Attribute) else written
                base = base.value
            if isinstance(written, ast.Attribute):
                out.append((node.lineno, getattr(base, "id", ast.unparse(base)), ast.unparse(target)))
    return out


def test_the_engine_writes_no_field_of_a_run():
    files = [p for e in ENGINE for p in ([ROOT / e] if e.endswith(".py") else sorted((ROOT / e).rglob("*.py")))]
    assert len(files) > 10
    found = [(str(p.relative_to(ROOT)), line, target) for p in files
             for line, base, target in attribute_writes(p) if base not in ENGINE_OWN]
    assert found == [], "the engine assigns fields of something not its own (a run's state?): " \
                        "tell the run through RunHandle's methods instead"


def test_the_engine_field_check_sees_a_run_written(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("def f(self, state, store):\n    self.a = 1\n    store.b[0] = 2\n"
                      "    state.step_count += 1\n    setattr(state, 'c', 3)\n")
    assert [(base, target) for _, base, target in attribute_writes(source) if base not in ENGINE_OWN] == [
        ("state", "state.step_count"), ("state", "setattr(state, 'c', 3)")]
