"""Starting this program again, for modes that spread their jobs over worker processes."""

from __future__ import annotations

import sys


def program_command() -> list[str]:
    """The command that starts this program again: ``python main.py``, or ``python -m pkg.main`` when it was
    run as a module (so its imports work the same in the worker). Append the command-line arguments."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if name and name != "__main__":
        return [sys.executable, "-m", name.removesuffix(".__main__")]
    return [sys.executable, sys.argv[0]]
