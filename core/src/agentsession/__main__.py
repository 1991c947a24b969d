"""``python -m agentsession``: the ``agentsession`` command."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
