"""The house rules (DESIGN.md §6), checked on the code as it is: every arrow points down, no room
reaches into another's private names, modules stay small, nothing reads outside the checkout.

The floors, top down: the roof (``launch.cli``, ``launch.up``, ``launch.compose``: the entry
points and the one composition root), the web room (``agent_ui``), the edges (``cti``, ``agi``,
``recordings``), the stores (``ticketing``, ``accounts``), the ground (the rest of ``hotline``:
settings, identity, db, bus, calls, Asterisk provisioning, the SIP simulator). ``hotline`` is
counted as its modules, since it holds both the ground and the roof.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hotline", "ticketing", "accounts", "cti", "agi", "recordings", "agent_ui", "notify", "live")
ROOF = {"launch.cli", "launch.up", "launch.compose"}
FLOOR = {"roof": 4, "agent_ui": 3, "live": 3, "cti": 2, "agi": 2, "recordings": 2, "notify": 2,
         "ticketing": 1, "accounts": 1, "ground": 0}
MAX_LINES = 500
BIG_ALLOWED = ("ticketing/seed.py",)  # demo data: a long list of a city's departments and stories


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", *patterns], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return [ROOT / p for p in out if (ROOT / p).exists()]


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def room(module: str) -> str:
    """The room a module lives in: its top-level package, ``hotline`` split into its modules."""
    parts = module.split(".")
    if parts[0] != "hotline":
        return parts[0]
    return ".".join(parts[:2]) if len(parts) > 1 else "hotline"


def floor(r: str) -> int:
    return 0 if r.startswith("hotline") else FLOOR[r]


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
    return out


def product_modules() -> dict[str, Path]:
    files = [p for p in tracked("*.py") if p.relative_to(ROOT).parts[0] in PACKAGES]
    return {module_of(p): p for p in files if "migrations" not in p.parts}


def edges() -> dict[tuple[str, str], list[str]]:
    """room → room: the modules that make the arrow."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for mod, path in product_modules().items():
        for target, _names in imports(path):
            if target.split(".")[0] not in PACKAGES:
                continue
            a, b = room(mod), room(target)
            if a != b:
                out[(a, b)].append(f"{mod} → {target}")
    return out


def test_no_store_or_edge_imports_the_web_room_or_the_roof() -> None:
    upward = {pair: where for pair, where in edges().items() if floor(pair[1]) > floor(pair[0])}
    assert upward == {}, "imports that run back up:\n" + "\n".join(f"{a} → {b}: {w}" for (a, b), w in upward.items())


def test_the_rooms_import_each_other_without_a_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges():
        graph[a].add(b)
    seen: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in seen:
                visit(nxt, [*stack, nxt])
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node, [node])


def test_no_room_takes_another_rooms_private_names() -> None:
    found = []
    for mod, path in product_modules().items():
        for target, names in imports(path):
            if target.split(".")[0] in PACKAGES and room(target) != room(mod):
                found += [f"{mod}: from {target} import {n}" for n in names if n.startswith("_")]
                if any(part.startswith("_") and part != "__init__" for part in target.split(".")):
                    found.append(f"{mod}: import {target}")
    assert found == []


def test_no_module_is_over_500_lines() -> None:
    big = []
    for path in tracked("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.split("/")[0] in PACKAGES and "migrations" not in rel and rel not in BIG_ALLOWED:
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                big.append(f"{rel}: {n}")
    assert big == []


def test_nothing_reads_outside_the_checkout() -> None:
    # a machine's own folders in code, tests or benchmarks break a clone anywhere else
    machine = re.compile(r"""["'](/work/|/root/|/home/|/tmp/[a-z])""")
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
             for p in tracked("*.py", "Makefile", "*.toml", "*.sh")
             if p.relative_to(ROOT).parts[0] != "var"
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if machine.search(line)]
    assert found == []


def test_benchmarks_share_helpers_through_a_package_not_the_tests() -> None:
    found = [f"{p.relative_to(ROOT)}: {t}" for p in tracked("bench/*.py") for t, _ in imports(p)
             if t == "tests" or t.startswith("tests.")]
    assert found == []
