#!/usr/bin/env python3
"""Finds import cycles between the library's top-level modules.

A top-level module is src/NAME.rs or src/NAME/ (src/lib.rs and src/bin/ excepted). Module A
depends on module B when any file of A names `crate::B` (in a `use`, a path, or a
`crate::{B, ...}` group), or names an item that src/lib.rs re-exports from B
(`crate::Error` is `error`). Test code counts too: a test that reaches up into a module
that depends on it is a cycle like any other.

Usage: scripts/module-cycles.py [--graph]
Prints each cycle (a strongly connected component and the edges inside it) and exits 1 if
there is one; `--graph` also prints every module's dependencies.
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals, so words in them are not paths."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'b?"(?:\\.|[^"\\])*"', '""', text)
    return text


def top_level_modules():
    modules = {}
    for entry in sorted(SRC.iterdir()):
        if entry.name in ("lib.rs", "bin"):
            continue
        if entry.is_dir():
            modules[entry.name] = sorted(entry.rglob("*.rs"))
        elif entry.suffix == ".rs":
            modules[entry.stem] = [entry]
    return modules


def reexports(modules):
    """Names src/lib.rs re-exports, mapped to the module they come from."""
    lib = strip_comments_and_strings((SRC / "lib.rs").read_text())
    names = {}
    for module, body in re.findall(r"pub use (\w+)::(\{[^}]*\}|[\w:]+);", lib):
        if module not in modules:
            continue
        for name in re.findall(r"\w+", body.strip("{}")):
            names[name] = module
    return names


def group_heads(body):
    """The first path segment of each item of a `{a, b::c, d::{e, f}}` group."""
    heads, depth, item = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            heads.append(item)
            item = ""
        else:
            item += ch
    heads.append(item)
    return [re.match(r"\s*(\w*)", h).group(1) for h in heads]


def dependencies(files, modules, exported):
    deps = set()
    for path in files:
        text = strip_comments_and_strings(path.read_text())
        for match in re.finditer(r"\bcrate::(\w+|\{)", text):
            if match.group(1) == "{":
                start = match.end()
                depth, end = 1, start
                while depth and end < len(text):
                    depth += {"{": 1, "}": -1}.get(text[end], 0)
                    end += 1
                names = group_heads(text[start : end - 1])
            else:
                names = [match.group(1)]
            for name in names:
                if name in modules:
                    deps.add(name)
                elif name in exported:
                    deps.add(exported[name])
    return deps


def strongly_connected(graph):
    """Tarjan's algorithm; returns the components with more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    modules = top_level_modules()
    exported = reexports(modules)
    graph = {
        name: dependencies(files, modules, exported) - {name}
        for name, files in modules.items()
    }
    if "--graph" in sys.argv:
        for name in sorted(graph):
            print(f"{name:12} -> {', '.join(sorted(graph[name])) or '(nothing)'}")
        print()
    cycles = strongly_connected(graph)
    for component in cycles:
        members = set(component)
        edges = [
            f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members
        ]
        print(f"cycle among {', '.join(component)}: {'; '.join(edges)}")
    if cycles:
        return 1
    print(f"no cycles among the {len(modules)} top-level library modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
