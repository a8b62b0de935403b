"""attribmap: localization maps from CNN classifiers, scored with one WSOL protocol.

>>> import attribmap
>>> maps = attribmap.explain(model, images, method="dgl", layer="Mixed_6e")   # doctest: +SKIP
"""
from attribmap._version import __version__
from attribmap.errors import AttribmapError, InputError, LayerError, MethodError, TargetError
from attribmap.explainer import Explainer, explain
from attribmap.methods import Extractor, get_method, methods, register_method, unregister_method

__all__ = [
    "__version__", "explain", "Explainer", "methods", "register_method", "unregister_method",
    "get_method", "Extractor", "AttribmapError", "LayerError", "TargetError", "MethodError", "InputError",
]
