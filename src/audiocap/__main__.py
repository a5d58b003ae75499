"""``python -m audiocap`` runs the command line."""

from audiocap.cli import main

main()
