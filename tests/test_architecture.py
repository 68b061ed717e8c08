"""Architecture checks: pure parsing of the sources (``ast``, ``tokenize``, ``re``), no imports.

Each checker is a small function over text or edges; every test first runs its checker on a
tiny synthetic example that must be reported (so a broken checker cannot pass silently), then
on the repository.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "idff"
WORKFLOW = ROOT / "workflow"

# Layer of every idff module, by longest matching dotted prefix ("idff" itself matches only the
# package __init__). Imports may point to the same or a lower layer, never to a higher one.
# A new module needs an entry here (or a parent package's).
LAYERS: dict[str, int] = {
    # 0 core: numerics, models, metrics, and small leaf utilities
    "idff.flows": 0, "idff.models": 0, "idff.metrics": 0, "idff.errors": 0, "idff.io": 0,
    "idff.layout": 0, "idff.progress": 0, "idff.provenance": 0, "idff.gpu_slots": 0,
    "idff.guard": 0, "idff.packing": 0, "idff.train_log": 0, "idff.train_speed": 0,
    # 1 data: loaders, downloads, checksums
    "idff.data": 1, "idff.integrity": 1,
    # 2 families: one module per data family
    "idff.families": 2,
    # 3 steps: config, planning, jobs
    "idff.config": 3, "idff.spec_check": 3, "idff.plan": 3, "idff.steps": 3, "idff.train": 3,
    "idff.tune": 3, "idff.fastpaths": 3, "idff.inputs": 3, "idff.estimate": 3, "idff.doctor": 3,
    # 4 report: tables and figures from result files
    "idff.report": 4,
    # 5 cli: the front door
    "idff.cli": 5, "idff": 5, "idff.__main__": 5,
}

# Specific rules on top of the layer order: (importer prefix, forbidden imported prefixes).
_CORE_ONLY = ("idff.flows", "idff.models", "idff.metrics")
_JOB_LAYER = ("idff.steps", "idff.train", "idff.tune", "idff.fastpaths")
FORBIDDEN: list[tuple[str, tuple[str, ...]]] = [
    ("idff.families", _JOB_LAYER),
    ("idff.report", ("idff.flows", "idff.models", *_JOB_LAYER)),
]


# ---------------------------------------------------------------- helpers


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _py_sources() -> dict[str, str]:
    return {_rel(p): p.read_text() for p in sorted(PKG.rglob("*.py"))}


def _workflow_sources() -> dict[str, str]:
    files = [WORKFLOW / "Snakefile", *sorted((WORKFLOW / "rules").glob("*.smk"))]
    return {_rel(p): p.read_text() for p in files}


def _module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk_imports(tree: ast.AST):
    """Yield (import node, inside a function, under ``if TYPE_CHECKING``) for every import."""

    def visit(node: ast.AST, in_func: bool, in_tc: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_func, in_tc
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, True, in_tc)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), in_func, True)
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), in_func, in_tc)
            else:
                yield from visit(child, in_func, in_tc)

    yield from visit(tree, False, False)


def import_edges(sources: dict[str, str], *, type_checking: bool = True):
    """Edges (importer, imported, "path:line") between the idff modules of ``sources``.

    Relative imports are resolved; ``from pkg import name`` points to ``pkg.name`` when that is
    a module of ``sources``, else to ``pkg``. Function-level imports count.
    """
    modules = {_module_name(p): p for p in sources}
    packages = {_module_name(p) for p in sources if p.endswith("__init__.py")}

    def existing(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges = []
    for path, text in sources.items():
        me = _module_name(path)
        for node, _in_func, in_tc in _walk_imports(ast.parse(text, path)):
            if in_tc and not type_checking:
                continue
            where = f"{path}:{node.lineno}"
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == "idff"]
                targets = [t for t in map(existing, targets) if t]
            else:
                if node.level:
                    base = me if me in packages else me.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                if base.split(".")[0] != "idff":
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else existing(base) or base)
            for t in dict.fromkeys(targets):
                if t != me:
                    edges.append((me, t, where))
        for line, name in _dynamic_imports(ast.parse(text, path), me):
            t = existing(name) if name.split(".")[0] == "idff" else None
            if t and t != me:
                edges.append((me, t, f"{path}:{line} (importlib)"))
    return edges


def _str_values(node: ast.expr, names: dict[str, list[str]]) -> list[str] | None:
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            return [e.value for e in node.elts]
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return None


def _dynamic_imports(tree: ast.AST, me: str):
    """(line, module) of ``importlib.import_module(...)`` calls whose argument is a literal, or
    an f-string over ``__name__`` and a loop variable running over a literal tuple of names
    (a registry such as ``for m in ("md", "sst"): import_module(f"{__name__}.{m}")``)."""
    names: dict[str, list[str]] = {"__name__": [me]}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            vals = _str_values(node.value, names)
            if vals is not None:
                names[node.targets[0].id] = vals
        elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            vals = _str_values(node.iter, names)
            if vals is not None:
                names[node.target.id] = vals
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "import_module"))):
            continue
        arg = node.args[0]
        choices: list[str] = [""]
        parts = arg.values if isinstance(arg, ast.JoinedStr) else [arg]
        for part in parts:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                vals = [part.value]
            elif isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name):
                vals = names.get(part.value.id)
            else:
                vals = None
            if vals is None:
                choices = []
                break
            choices = [c + v for c in choices for v in vals]
        for name in choices:
            yield node.lineno, name


def _matches(module: str, prefix: str) -> bool:
    if prefix == "idff":  # the package __init__ only, not everything below it
        return module == "idff"
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str, layers: dict[str, int] = LAYERS) -> int | None:
    hits = [p for p in layers if _matches(module, p)]
    return layers[max(hits, key=len)] if hits else None


def layer_violations(modules, edges, layers=LAYERS, forbidden=FORBIDDEN, core_only=_CORE_ONLY):
    out = []
    for m in sorted(modules):
        if layer_of(m, layers) is None:
            out.append(f"{m}: no layer; add it to LAYERS in tests/test_architecture.py")
    for src, dst, where in edges:
        ls, ld = layer_of(src, layers), layer_of(dst, layers)
        if ls is not None and ld is not None and ld > ls:
            out.append(f"{where}: {src} (layer {ls}) imports {dst} (layer {ld})")
        if any(_matches(src, p) for p in core_only) and ld != 0:
            out.append(f"{where}: {src} is core-only but imports {dst} (layer {ld})")
        for importer, banned in forbidden:
            if _matches(src, importer) and any(_matches(dst, b) for b in banned):
                out.append(f"{where}: {src} must not import {dst}")
    return out


def find_cycles(edges) -> list[str]:
    """One cycle path per strongly connected component with a cycle (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for src, dst, w in edges:
        graph[src].add(dst)
        where.setdefault((src, dst), w)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    sccs: list[set[str]] = []

    def strong(v: str):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                sccs.append(comp)

    for v in sorted(set(graph) | {d for ds in graph.values() for d in ds}):
        if v not in index:
            strong(v)

    def shortest_cycle(start: str, comp: set[str]) -> list[str]:
        prev: dict[str, str] = {}
        frontier = [start]
        while frontier:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & comp):
                    if w == start:
                        path = [v]
                        while path[-1] != start:
                            path.append(prev[path[-1]])
                        return [*reversed(path), start]
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        raise AssertionError(f"{start} is on no cycle of {comp}")

    out = []
    for comp in sccs:
        seen: set[tuple[str, ...]] = set()
        for start in sorted(comp):
            path = shortest_cycle(start, comp)
            ring = path[:-1]
            k = ring.index(min(ring))
            key = tuple(ring[k:] + ring[:k])
            if key in seen:
                continue
            seen.add(key)
            path = [*key, key[0]]
            hops = [f"{a} -> {b} ({where[(a, b)]})" for a, b in zip(path, path[1:], strict=False)]
            out.append("cycle: " + "; ".join(hops))
    return out


def _comment_lines(text: str) -> set[int]:
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            lines.add(tok.start[0])
    return lines


def unjustified_function_imports(sources: dict[str, str]) -> list[str]:
    out = []
    for path, text in sources.items():
        comments = _comment_lines(text)
        for node, in_func, in_tc in _walk_imports(ast.parse(text, path)):
            if not in_func or in_tc:
                continue
            lines = set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
            if not (lines | {node.lineno - 1}) & comments:
                out.append(f"{path}:{node.lineno}")
    return out


_STRING_PREFIX = re.compile(r"^[rRbBuUfF]*(\"\"\"|'''|\"|')")


def _string_body(token: str) -> str:
    """The text between the quotes of a string token (escapes and braces left as written)."""
    m = _STRING_PREFIX.match(token)
    return token[m.end():len(token) - len(m.group(1))] if m else token


def bad_shell_commands(sources: dict[str, str]) -> list[str]:
    """Every ``shell:`` directive (and ``shell(...)`` call) must start with ``idff ``."""
    out = []
    for path, text in sources.items():
        toks = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                  tokenize.DEDENT, tokenize.COMMENT)]
        for i, tok in enumerate(toks[:-2]):
            if tok.type == tokenize.NAME and tok.string == "shell" and toks[i + 1].string in ":(":
                first = toks[i + 2]
                if first.type != tokenize.STRING or not _string_body(first.string).startswith("idff "):
                    out.append(f"{path}:{tok.start[0]}: shell command starts {first.string[:40]!r}")
    return out


FORBIDDEN_TEXT = ("python -m idff", '"-m", "idff')

# A result path template: "results/" then a path that has a {placeholder}, a file ending or a
# sub-folder. Just the prefix ("results/") or one folder ("results/metrics") is not a template.
_RESULT_PATH = re.compile(r"results/([\w.{}\-/]*)")


def _is_result_template(text: str) -> bool:
    for m in _RESULT_PATH.finditer(text):
        tail = m.group(1)
        if "{" in tail or re.search(r"\.[A-Za-z]\w*$", tail.split("/")[-1]):
            return True
        if re.search(r"/[\w{]", tail):  # a folder below the kind folder
            return True
    return False


def _py_string_literals(text: str, path: str):
    """(line, text) of every string literal that is not a docstring; f-strings keep ``{}``."""
    tree = ast.parse(text, path)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstring.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            yield node.lineno, "".join(str(p) for p in parts)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docstrings and id(node) not in inside_fstring):
            yield node.lineno, node.value


def _smk_string_literals(text: str):
    """(line, text) of every string token of a Snakefile; comments are separate tokens and a
    triple-quoted string that is a statement of its own (a docstring) is skipped."""
    prev = None
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING:
            body = _string_body(tok.string)
            own_line = prev in (None, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
            if not (own_line and tok.string.lstrip("rRbBuUfF")[:3] in ('"""', "'''")):
                yield tok.start[0], body
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            prev = tok.type


def stray_result_paths(py: dict[str, str], smk: dict[str, str], home: str = "idff/layout.py"):
    out = []
    found = [(p, *lit) for p, t in py.items() for lit in _py_string_literals(t, p)]
    found += [(p, *lit) for p, t in smk.items() for lit in _smk_string_literals(t)]
    for path, line, text in found:
        if path != home and _is_result_template(text):
            out.append(f"{path}:{line}: {text.strip()[:80]!r}")
    return out


_PUNCT_ONLY = re.compile(r"^[\s()\[\]{},:;]*$")


def _normalised_lines(path: str, text: str) -> list[tuple[int, str]]:
    skip: set[int] = set()
    if path.endswith(".py"):
        for node in ast.walk(ast.parse(text, path)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                skip.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = " ".join(raw.split())
        if (n in skip or not line or line.startswith("#") or _PUNCT_ONLY.match(line)
                or line in ('"""', "'''") or re.match(r"(import|from)\s+\S+", line)):
            continue
        out.append((n, line))
    return out


def repeated_blocks(sources: dict[str, str], size: int = 6) -> list[str]:
    """Runs of ``size`` or more identical normalised lines found in two or more places."""
    lines = {p: _normalised_lines(p, t) for p, t in sources.items()}
    sites: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    for p, ls in lines.items():
        for i in range(len(ls) - size + 1):
            sites[tuple(x for _, x in ls[i:i + size])].append((p, i))
    key_at = {loc: k for k, locs in sites.items() if len(locs) > 1 for loc in locs}
    done: set[tuple[str, int]] = set()
    out = []
    for loc in sorted(key_at):
        if loc in done:
            continue
        locs = sites[key_at[loc]]
        n = 0
        while True:
            shifted = [(p, i + n) for p, i in locs]
            if n and not (shifted[0] in key_at and sites[key_at[shifted[0]]] == shifted):
                break
            done.update(shifted)
            n += 1
        spans = [f"{p}:{lines[p][i][0]}-{lines[p][i + n - 1 + size - 1][0]}" for p, i in locs]
        out.append(f"{n + size - 1} lines repeated at " + ", ".join(spans))
    return out


# ---------------------------------------------------------------- tests


def test_layers_point_down():
    fake = {
        "idff/__init__.py": "",
        "idff/flows/__init__.py": "from .paths import x\n",
        "idff/flows/paths.py": "from __future__ import annotations\nimport os\n"
                               "def f():\n    from idff.report import tables\n",
        "idff/report/__init__.py": "from . import tables\n",
        "idff/report/tables.py": "from ..steps import jobs\nfrom .. import flows\n",
        "idff/steps/__init__.py": "",
        "idff/steps/jobs.py": "",
        "idff/families/md.py": "from idff.train import run\n",
        "idff/train.py": "",
        "idff/newthing.py": "",
    }
    fake_edges = import_edges(fake)
    assert ("idff.flows", "idff.flows.paths", "idff/flows/__init__.py:1") in fake_edges
    assert ("idff.report.tables", "idff.steps.jobs", "idff/report/tables.py:1") in fake_edges
    assert ("idff.report", "idff.report.tables", "idff/report/__init__.py:1") in fake_edges
    got = "\n".join(layer_violations(_module_set(fake), fake_edges))
    assert "idff.newthing: no layer" in got
    assert "idff/flows/paths.py:4: idff.flows.paths (layer 0) imports idff.report.tables" in got
    assert "core-only" in got
    assert "idff/families/md.py:1: idff.families.md must not import idff.train" in got
    assert "idff/report/tables.py:1: idff.report.tables must not import idff.steps.jobs" in got
    assert "idff/report/tables.py:2: idff.report.tables must not import idff.flows" in got

    sources = _py_sources()
    problems = layer_violations(_module_set(sources), import_edges(sources))
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def _module_set(sources: dict[str, str]) -> set[str]:
    return {_module_name(p) for p in sources}


def test_import_graph_has_no_cycle():
    fake = {
        "idff/report/__init__.py": "def f():\n    from .tables import t\n",
        "idff/report/tables.py": "from . import helpers\n",
        "idff/report/helpers.py": "from idff.report import TARGETS\n",
        "idff/io.py": "",
    }
    got = find_cycles(import_edges(fake))
    assert len(got) == 1 and "idff.report -> idff.report.tables" in got[0], got
    registry = {  # a package __init__ filling a registry from submodules that import it
        "idff/report/__init__.py": ('import importlib\nX = 1\n_MODS = ("md",)\n'
                                    'for _m in _MODS:\n'
                                    '    importlib.import_module(f"{__name__}.{_m}")\n'),
        "idff/report/md.py": "from idff.report import X\n",
    }
    got = find_cycles(import_edges(registry))
    assert len(got) == 1 and "idff/report/__init__.py:5 (importlib)" in got[0], got
    assert not find_cycles([("a", "b", "x:1"), ("b", "c", "x:2")])

    # imports under `if TYPE_CHECKING:` never run, so they cannot make an import-time cycle
    problems = find_cycles(import_edges(_py_sources(), type_checking=False))
    assert not problems, "import cycles:\n" + "\n".join(problems)


def test_function_level_imports_are_justified():
    fake = {"m.py": (
        "from __future__ import annotations\n"
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import torch\n"
        "def f():\n"
        "    import json\n"                      # 7: bare
        "    # cheap: only the CLI needs it\n"
        "    import csv\n"
        "    import re  # lazy\n"
        "    if TYPE_CHECKING:\n"
        "        import torch\n"
        "    def g():\n"
        "        from x import (a,\n"            # 14: bare, multi-line
        "                       b)\n"
        "class C:\n"
        "    def m(self):\n"
        "        import io\n"                    # 18: bare, in a method
    )}
    assert unjustified_function_imports(fake) == ["m.py:7", "m.py:14", "m.py:18"]

    problems = unjustified_function_imports(_py_sources())
    assert not problems, ("function-level imports without a comment saying why:\n"
                          + "\n".join(problems))


def test_rules_call_the_idff_front_door():
    fake = {"workflow/rules/x.smk": (
        'rule a:\n    shell:\n        "idff train --out {output} "\n        "> {log}"\n'
        'rule b:\n    shell:\n        # a comment\n        f"python -m idff sweep"\n'
        "rule c:\n    run:\n        shell('idffx')\n"
        'rule d:\n    shell: "idff floor"\n'
    )}
    assert [p.split(":")[1] for p in bad_shell_commands(fake)] == ["6", "11"]

    sources = _workflow_sources()
    problems = bad_shell_commands(sources)
    for path in sorted(WORKFLOW.rglob("*")):
        if path.is_file():
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            for n, line in enumerate(text.splitlines(), 1):
                problems += [f"{_rel(path)}:{n}: contains {s!r}" for s in FORBIDDEN_TEXT if s in line]
    assert not problems, "rules must call the `idff` CLI:\n" + "\n".join(problems)


def test_result_paths_have_one_home():
    py = {
        "idff/layout.py": 'T = "results/metrics/{exp}/x.json"\n',
        "idff/a.py": ('"""Reads results/metrics/{exp}/x.json."""\n'
                      'P = "results/"\n'
                      'Q = f"results/{kind}/{exp}"\n'        # 3: f-string template
                      'R = "results/summary/toy.json"\n'     # 4: file ending
                      'S = "outputs live under results/"\n'
                      'def f():\n    """Writes results/plots/{exp}."""\n'
                      'RE = r"results/[A-Za-z0-9_./-]+"\n'),
    }
    smk = {"workflow/rules/x.smk": ('# results/metrics/{exp}/a.json\n'
                                    'rule a:\n    output: "results/floor/{exp}.json"  # results/x/{y}\n'
                                    '    log: "logs/a.log"\n')}
    got = [p.split(": ")[0] for p in stray_result_paths(py, smk)]
    assert got == ["idff/a.py:3", "idff/a.py:4", "workflow/rules/x.smk:3"], got

    problems = stray_result_paths(_py_sources(), _workflow_sources())
    assert not problems, ("result path templates outside idff/layout.py:\n" + "\n".join(problems))


def test_no_repeated_blocks():
    block = "".join(f"    x{i} = f({i})\n" for i in range(6))
    fake = {
        "a.py": "import os\ndef f():\n" + block + "    y = 1\n",
        "b.py": "def g():\n" + block.replace("    ", "\t") + "\t(\n\t)\n\n\t# c\n",
        "c.py": "".join(f"z{i} = {i}\n" for i in range(12)),
    }
    got = repeated_blocks(fake)
    assert len(got) == 1 and "a.py:3-8" in got[0] and "b.py:2-7" in got[0], got
    five = "".join(f"x{i} = f({i})\n" for i in range(5))
    assert not repeated_blocks({"a.py": five, "b.py": five})

    sources = {**_py_sources(), **_workflow_sources()}
    problems = repeated_blocks(sources)
    assert not problems, "repeated blocks of 6+ lines:\n" + "\n".join(problems)
