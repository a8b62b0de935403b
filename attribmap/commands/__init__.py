"""Sub-commands of the ``attribmap`` command line.

Each module in this package defines one (or a few) sub-commands through a function
``register(subparsers)`` that adds its parser(s) and sets ``func`` via ``set_defaults``.
``func(args)`` returns an exit status (``0`` on success). :mod:`attribmap.cli` discovers
the modules automatically, so adding a command never means editing a shared file.
"""
