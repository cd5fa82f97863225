"""Weak-to-strong methods: each turns weak labels into a trained strong student.

A method is one file with one ``@w2s_method("name")`` factory; importing this package registers
the built-in ones. See :class:`~overseer.w2s.methods.base.Method` for the contract.
"""

from overseer.w2s.methods import bootstrap, label_filter, losses, product, s2s  # noqa: F401  (registers the built-in methods)
from overseer.w2s.methods.base import Method, StudentContext, make_method, method_names, w2s_method

__all__ = ["Method", "StudentContext", "make_method", "method_names", "w2s_method"]
