"""``python -m tui_trainer.diagnose [--nice] RUN_DIR``: the findings as one JSON list."""

from __future__ import annotations

from tui_trainer.diagnose import main

if __name__ == "__main__":
    raise SystemExit(main())
