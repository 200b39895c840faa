"""Provides ``python -m tui_trainer.runner RUN_DIR [--resume]``: the training child."""

import sys

from tui_trainer.runner.child import main

sys.exit(main())
