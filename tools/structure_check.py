#!/usr/bin/env python3
"""The structure rules of services/*/src, checked (run by `make lint`):

- no import cycle between the module files of a crate (a module may not
  use, directly or through others, a module that uses it; test modules,
  from `#[cfg(test)]` on, are left out),
- no function longer than 150 lines,
- no file longer than 700 lines.

Edges are read from `use` declarations and from inline `crate::`/`super::`
paths (comments stripped), each resolved to the deepest module that has a
file of its own. Prints each broken rule and exits 1 if there is one.
"""

import re
import sys
from pathlib import Path

MAX_FN_LINES = 150
MAX_FILE_LINES = 700
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_files(src: Path) -> dict:
    """Module path (tuple) -> file, for a crate's src folder."""
    mods = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("").parts
        if rel in (("lib",), ("main",)):
            key = ()
        elif rel[-1] == "mod":
            key = rel[:-1]
        else:
            key = rel
        if "bin" in rel[:1]:
            continue
        mods[key] = f
    return mods


def code_of(f: Path) -> str:
    text = f.read_text()
    cut = text.find("#[cfg(test)]")
    if cut >= 0:
        text = text[:cut]
    return re.sub(r"//[^\n]*", "", text)


def expand_use(tree: str) -> list:
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner = tree[:start], tree[start + 1 : i]
                parts, d, last = [], 0, 0
                for j, c in enumerate(inner):
                    if c == "{":
                        d += 1
                    elif c == "}":
                        d -= 1
                    elif c == "," and d == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                out = []
                for p in filter(None, parts):
                    out += expand_use(prefix + p)
                return out
    return [re.sub(r"\bas\b.*$", "", tree)]


def resolve(segments: list, here: tuple, mods: dict):
    """The module file a path names, from module `here`."""
    if not segments:
        return None
    if segments[0] == "crate":
        base, rest = (), segments[1:]
    elif segments[0] in ("super", "self"):
        base = here
        while segments and segments[0] in ("super", "self"):
            if segments[0] == "super":
                base = base[:-1]
            segments = segments[1:]
        rest = segments
    elif here + (segments[0],) in mods:
        base, rest = here, segments
    else:
        return None
    best = base if base in mods else None
    for k in range(1, len(rest) + 1):
        if base + tuple(rest[:k]) in mods:
            best = base + tuple(rest[:k])
    return best


def edges_of(mods: dict) -> dict:
    edges = {m: set() for m in mods}
    for m, f in mods.items():
        code = code_of(f)
        paths = []
        for tree in re.findall(r"\buse\s+([^;]+);", code):
            paths += [p.split("::") for p in expand_use(tree)]
        paths += [
            p.split("::")
            for p in re.findall(rf"\b((?:crate|super)(?:::{IDENT})+)", code)
        ]
        for segs in paths:
            segs = [s for s in segs if s and s != "*"]
            target = resolve(segs, m, mods)
            if target is not None and target != m:
                edges[m].add(target)
    return edges


def cycles(edges: dict) -> list:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def long_functions(f: Path) -> list:
    lines = f.read_text().split("\n")
    found = []
    for i, line in enumerate(lines):
        m = re.match(rf"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+({IDENT})", line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i + 1, len(lines)):
            if lines[j] == indent + "}":
                if j - i + 1 > MAX_FN_LINES:
                    found.append((m.group(2), i + 1, j - i + 1))
                break
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    broken = []
    for src in sorted(root.glob("services/*/src")):
        crate = src.parent.name
        mods = module_files(src)
        for comp in cycles(edges_of(mods)):
            names = sorted(str(mods[m].relative_to(root)) for m in comp)
            broken.append(f"import cycle in {crate}: {' <-> '.join(names)}")
        for f in sorted(mods.values()):
            n = f.read_text().count("\n")
            rel = f.relative_to(root)
            if n > MAX_FILE_LINES:
                broken.append(f"{rel}: {n} lines (at most {MAX_FILE_LINES})")
            for name, line, length in long_functions(f):
                broken.append(f"{rel}:{line}: fn {name} is {length} lines (at most {MAX_FN_LINES})")
    for b in broken:
        print(b)
    if not broken:
        print("structure_check: no import cycle, no fn over 150 lines, no file over 700 lines")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
