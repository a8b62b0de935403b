"""``python -m attribmap`` (also what ``torchrun -m attribmap`` runs)."""
from attribmap.cli import entry

entry()
