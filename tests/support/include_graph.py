#!/usr/bin/python3
"""The include graph of one part of Runnel (default: broker/), by module.

  tests/support/include_graph.py [PART] [--check] [--list]

A module is a header with its source (x.hpp and x.cpp are one module). An arrow runs from a
module to each module it includes with "..." or <runnel/PART/...>. Modules are put on floors:
a module that includes none of PART's is on floor 0, any other one floor above the highest
it includes. A cycle (modules that include each other, directly or round about) has no
floor; each arrow inside one runs back up a floor, and is counted as an upward include.

Prints the files, modules, floors, upward includes and cycles (--list: every module by
floor). With --check, exits 1 when there is an upward include or a cycle (a CTest test).
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def modules_of(part):
    src = os.path.join(ROOT, part, "src")
    pub = os.path.join(ROOT, part, "include", "runnel", part)
    files = {}
    for base, prefix in ((src, ""), (pub, "<runnel/%s>/" % part)):
        for dirpath, _, names in os.walk(base):
            for name in names:
                if not name.endswith((".hpp", ".cpp")):
                    continue
                path = os.path.join(dirpath, name)
                files[prefix + os.path.relpath(path, base)] = path
    return files


def module_name(rel):
    # A public header and its source in src/ are one module.
    return os.path.splitext(rel.split(">/", 1)[-1])[0]


def graph(part):
    files = modules_of(part)
    edges = {}  # module -> {module: [include lines]}
    for rel, path in files.items():
        mod = module_name(rel)
        edges.setdefault(mod, {})
        here = os.path.dirname(rel)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for kind, target in INCLUDE.findall(text):
            if kind == '"':
                # Relative to the including file's folder, then to src/ (the include path).
                candidates = [os.path.normpath(os.path.join(here, target)), os.path.normpath(target)]
            elif target.startswith("runnel/%s/" % part):
                candidates = ["<runnel/%s>/" % part + target[len("runnel/%s/" % part):]]
            else:
                continue
            found = next((c for c in candidates if c in files), None)
            if found is None:
                continue
            dep = module_name(found)
            if dep != mod:
                edges[mod].setdefault(dep, []).append("%s -> %s" % (rel, found))
    return files, edges


def strongly_connected(edges):
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
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
            out.append(component)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", nargs="?", default="broker")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    files, edges = graph(args.part)
    components = strongly_connected(edges)
    component_of = {m: i for i, c in enumerate(components) for m in c}
    cycles = [sorted(c) for c in components if len(c) > 1]
    upward = [line for m, deps in edges.items() for d, lines in deps.items()
              if component_of[m] == component_of[d] for line in lines]
    # Floors of the condensation (Tarjan lists components dependencies first).
    floor_of = {}
    for i, component in enumerate(components):
        deps = {component_of[d] for m in component for d in edges[m]} - {i}
        floor_of[i] = 1 + max((floor_of[d] for d in deps), default=-1)
    floors = 1 + max(floor_of.values(), default=-1)
    print("%s/: %d files, %d modules, %d floors, %d upward includes, %d cycles" %
          (args.part, len(files), len(edges), floors, len(upward), len(cycles)))
    for line in sorted(upward):
        print("  upward include: " + line)
    for cycle in cycles:
        print("  cycle: " + " <-> ".join(cycle))
    if args.list:
        for f in range(floors):
            mods = sorted(m for m in edges if floor_of[component_of[m]] == f)
            print("  floor %d: %s" % (f, ", ".join(mods)))
    if args.check and (upward or cycles):
        sys.exit(1)


if __name__ == "__main__":
    main()
