"""``python -m lk_core`` runs the ``lk`` command line."""

from lk_core.cli import run

run()
