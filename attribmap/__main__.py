"""``python -m attribmap`` (also what ``torchrun -m attribmap`` runs)."""
import sys

from attribmap.cli import main

sys.exit(main())
