"""Checks of a notebook's papermill parameters against the names and types its parameters cell declares.

``papermill -p name value`` passes numbers and text; a list or dict given that way arrives as a
string, and a notebook would then loop over its characters (``unknown data set 't'``). A name the
notebook does not declare (``-p datset fb15k``) only gets a warning from papermill, and the run
goes on with the default.
"""

from __future__ import annotations

import ast
import difflib

# papermill's Python translator starts the cell it injects with this comment line
INJECTED_CELL_HEADER = "# Parameters\n"
# what papermill's --inject-paths adds to the parameters on its own
PAPERMILL_NAMES = ("PAPERMILL_INPUT_PATH", "PAPERMILL_OUTPUT_PATH")


def injected_names(namespace: dict) -> list[str]:
    """The names assigned by papermill's injected cells, read from the kernel's input history ``In``."""
    names = []
    for source in namespace.get("In", []):
        if not (isinstance(source, str) and source.startswith(INJECTED_CELL_HEADER)):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        names += [target.id for node in tree.body if isinstance(node, ast.Assign)
                  for target in node.targets if isinstance(target, ast.Name)]
    return names


def check_parameters(namespace: dict) -> None:
    """Raise ``TypeError`` naming the first parameter that the notebook does not declare, or whose
    value does not have its declared type.

    ``namespace``: the notebook's ``globals()``; the declarations are the annotated assignments
    of its parameters cell (``top_n: int = 20``), which Python records in ``__annotations__``.
    A ``float`` parameter also takes an ``int``; ``bool`` counts only where declared.
    """
    declared = namespace.get("__annotations__", {})
    for name in injected_names(namespace):
        if name not in declared and name not in PAPERMILL_NAMES:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise TypeError(f"unknown parameter {name}{hint}; this notebook's parameters: {', '.join(declared)}")
    for name, kind in declared.items():
        if not isinstance(kind, type) or name not in namespace:
            continue
        value = namespace[name]
        allowed = (int, float) if kind is float else (kind,)
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, allowed):
            hint = (f"; papermill's -p passes numbers and text, give lists and dicts as YAML: -y '{name}: ...'"
                    if isinstance(value, str) and kind in (list, dict) else "")
            raise TypeError(f"parameter {name} must be {kind.__name__}, got {value!r}{hint}")
