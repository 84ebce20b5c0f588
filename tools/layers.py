#!/usr/bin/env python3
"""layers.py - check that weave's sources keep to their layers.

Usage: layers.py SRC_DIR

The folders under src/ are the layers, lowest first:

    base   what knows nothing of tasks: contexts, stacks, timers, the poller,
           the inbox, handles, the list
    core   the scheduler, park and wake, wait queues, tasks, time, deadlines
    io     fds, I/O calls, files, sockets, streams, the offload pool, signals
    coord  channels (shared ones too), select, locks, groups
    diag   introspection, the watchdog, fatal-signal reports
    run    schedulers assembled from every layer: weave_run and its kin,
           posts and calls, a scheduler per core

A file may include the headers of its own layer and of the layers below,
and use (call, or take the address of) what they define; never anything
of a layer above. And no two modules may depend on each other, directly or
round a cycle, whatever their layers. A module is a header and the sources
that implement it: x.h with x.c, or x_<variant>.c / .S (poller_epoll.c
implements poller.h, context_x86_64.S context.h).

The check reads the tree, not a build: it strips comments and literals,
finds where each weave_* function and variable is defined (a static one is
private to its file), and follows every #include "..." and every use of a
weave_* name. It names the file, the line and the symbol of each upward use
and each cycle, and exits 1 if it found any.
"""
import os
import re
import sys

LAYERS = ["base", "core", "io", "coord", "diag", "run"]

IDENT = re.compile(r"[A-Za-z_]\w*")
SYMBOL = re.compile(r"weave_\w+")
ATTR = r"__attribute__\s*\(\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\)"
TAGGED = re.compile(r"\b(struct|union|enum)\s+$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def strip(text):
    """text with comments and string/char literals blanked, lines kept."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


class Source:
    def __init__(self, root, rel):
        self.rel = rel  # path under src/
        self.path = os.path.join(root, rel)
        parts = rel.split("/")
        self.layer = parts[0] if len(parts) == 2 else None
        self.name = parts[-1]
        self.stem, self.ext = os.path.splitext(self.name)
        with open(self.path, encoding="utf-8") as f:
            self.raw = f.read()
        self.code = strip(self.raw) if self.ext != ".S" else self.raw
        self.module = None  # set once every file is known

    def includes(self):
        for m in INCLUDE.finditer(self.raw):
            yield m.group(1), line_of(self.raw, m.start())

    def definitions(self):
        """(name, static) of what this file defines outside any function:
        functions with a body, variables and typedefs; static functions
        and variables are private to a .c file. Struct tags are left out:
        a file that looks inside a struct includes the header defining it,
        and one that does not holds only pointers, which tie it to nothing."""
        code = self.code
        if self.ext == ".S":
            for m in re.finditer(r"^\s*\.globl\s+(weave_\w+)", code, re.M):
                yield m.group(1), False
            return
        depth = 0
        stmt_start = 0
        i, n = 0, len(code)
        while i < n:
            c = code[i]
            if c == "#" and code[:i].rstrip(" \t").endswith("\n") or (c == "#" and i == 0):
                j = i
                while True:  # a preprocessor line, with its continuations
                    j = code.find("\n", j)
                    if j < 0 or code[j - 1] != "\\":
                        break
                    j += 1
                i = n if j < 0 else j
                stmt_start = i
                continue
            if c == "{":
                if depth == 0:
                    head = code[stmt_start:i]
                    m = re.search(r"\b(weave_\w+)\s*\((?:[^()]|\([^()]*\))*\)\s*(?:" + ATTR
                                  + r"\s*)*$", head, re.S)
                    if m and not TAGGED.search(head[:m.start(1)]):
                        yield m.group(1), bool(re.search(r"\bstatic\b", head))
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    stmt_start = i + 1
            elif c == ";" and depth == 0:
                stmt = re.sub(ATTR, " ", code[stmt_start:i])
                if re.search(r"\btypedef\b", stmt):
                    names = [m.group(0) for m in SYMBOL.finditer(stmt)
                             if not TAGGED.search(stmt[:m.start()])]
                    if names:
                        yield names[0], False
                elif not re.search(r"\bextern\b", stmt) and "(" not in stmt.split("=")[0]:
                    for m in re.finditer(r"\b(weave_\w+)\s*(?:=|$)", stmt):
                        if not TAGGED.search(stmt[:m.start(1)]):
                            yield m.group(1), bool(re.search(r"\bstatic\b", stmt))
                stmt_start = i + 1
            i += 1

    def uses(self):
        """(name, line) of every weave_* name used, struct tags aside."""
        for m in SYMBOL.finditer(self.code):
            if not TAGGED.search(self.code[max(0, m.start() - 16):m.start()]):
                yield m.group(0), line_of(self.code, m.start())


def module_of(src, headers):
    """The module a file belongs to: layer/stem, where a variant
    (poller_epoll.c, context_x86_64.S) joins the header it implements."""
    stem = src.stem
    if src.ext != ".h" and (src.layer, stem) not in headers:
        base = stem.split("_")[0]
        if (src.layer, base) in headers:
            stem = base
    return f"{src.layer}/{stem}"


def main(argv):
    if len(argv) != 2:
        print("usage: layers.py SRC_DIR", file=sys.stderr)
        return 2
    root = os.path.abspath(argv[1])
    sources = []
    problems = []
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            if f.endswith((".c", ".h", ".S")):
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                sources.append(Source(root, rel))
    by_rel = {s.rel: s for s in sources}
    for s in sources:
        if s.layer not in LAYERS:
            problems.append(f"src/{s.rel}: not in a layer folder (one of {', '.join(LAYERS)})")
    sources = [s for s in sources if s.layer in LAYERS]
    headers = {(s.layer, s.stem) for s in sources if s.ext == ".h"}
    for s in sources:
        s.module = module_of(s, headers)
    rank = {layer: i for i, layer in enumerate(LAYERS)}

    # Where each weave_* name is defined: name -> file (globals), and the
    # statics of each file, which nobody else can reach.
    defined = {}
    statics = {}
    for s in sources:
        for name, static in s.definitions():
            if static and s.ext != ".h":
                statics.setdefault(s.rel, set()).add(name)
            elif name in defined and defined[name].module != s.module:
                problems.append(f"src/{s.rel}: defines {name}, also defined in src/{defined[name].rel}")
            else:
                defined.setdefault(name, s)

    # Edges between modules: (from, to) -> [(file, line, what)]
    edges = {}

    def edge(src, dst, line, what):
        if src.module == dst.module:
            return
        edges.setdefault((src.module, dst.module), []).append((src, line, what))
        if rank[dst.layer] > rank[src.layer]:
            problems.append(f"src/{src.rel}:{line}: {what}, of src/{dst.rel}: layer {src.layer} "
                            f"may not use layer {dst.layer}, which lies above it")

    for s in sources:
        for inc, line in s.includes():
            target = None
            for cand in (os.path.normpath(os.path.join(os.path.dirname(s.rel), inc)), inc):
                if cand in by_rel:
                    target = by_rel[cand]
                    break
            if target is not None:
                edge(s, target, line, f'includes "{inc}"')
        seen = set()
        for name, line in s.uses():
            if name in statics.get(s.rel, ()) or name not in defined or name in seen:
                continue
            seen.add(name)
            edge(s, defined[name], line, f"uses {name}")

    # Cycles: strongly connected components of the module graph (Tarjan).
    graph = {}
    for (a, b) in edges:
        graph.setdefault(a, set()).add(b)
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            connect(v)
    for comp in sccs:
        members = set(comp)
        lines = [f"cycle between {len(comp)} modules: {', '.join(comp)}"]
        for (a, b), uses in sorted(edges.items()):
            if a in members and b in members:
                src, line, what = uses[0]
                more = f" (and {len(uses) - 1} more)" if len(uses) > 1 else ""
                lines.append(f"    {a} -> {b}: src/{src.rel}:{line}: {what}{more}")
        problems.append("\n".join(lines))

    if problems:
        for p in problems:
            print("layers: " + p)
        print(f"layers: FAILED, {len(problems)} problem(s)")
        return 1
    counts = {layer: sorted({s.module.split("/")[1] for s in sources if s.layer == layer})
              for layer in LAYERS}
    print(f"layers: {len(sources)} files, {len({s.module for s in sources})} modules, "
          f"{len(edges)} dependencies between modules; none upward, no cycle")
    for layer in reversed(LAYERS):
        print(f"  {layer:6} {' '.join(counts[layer])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
