"""``attribmap methods``: list the registered map extractors."""
from __future__ import annotations


def register(subparsers) -> None:
    """Add the ``methods`` sub-command to ``subparsers``."""
    p = subparsers.add_parser("methods", help="list the available map extractors")
    p.set_defaults(func=run)


def run(args) -> int:
    """Print every registered extractor and its description (``args`` has no options); returns 0."""
    import attribmap

    listing = attribmap.methods()
    width = max(len(n) for n in listing)
    for name, description in listing.items():
        print(f"{name:<{width}}  {description}")
    print(f"{'captum:<Name>':<{width}}  any other captum.attr attribution class by name")
    return 0
