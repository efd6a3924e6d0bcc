"""Checks of a notebook's papermill parameters against the types its parameters cell declares.

``papermill -p name value`` passes numbers and text; a list or dict given that way arrives as a
string, and a notebook would then loop over its characters (``unknown data set 't'``).
"""

from __future__ import annotations


def check_parameters(namespace: dict) -> None:
    """Raise ``TypeError`` naming the first parameter whose value does not have its declared type.

    ``namespace``: the notebook's ``globals()``; the declarations are the annotated assignments
    of its parameters cell (``top_n: int = 20``), which Python records in ``__annotations__``.
    A ``float`` parameter also takes an ``int``; ``bool`` counts only where declared.
    """
    for name, kind in namespace.get("__annotations__", {}).items():
        if not isinstance(kind, type) or name not in namespace:
            continue
        value = namespace[name]
        allowed = (int, float) if kind is float else (kind,)
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, allowed):
            hint = (f"; papermill's -p passes numbers and text, give lists and dicts as YAML: -y '{name}: ...'"
                    if isinstance(value, str) and kind in (list, dict) else "")
            raise TypeError(f"parameter {name} must be {kind.__name__}, got {value!r}{hint}")
