"""Lazy namespaces: a public name is imported on first use, so `import labkit` stays fast.

Layering: imports labkit.dtypes only. Used by labkit/__init__.py, labkit.compile, labkit.compress, labkit.plot
and labkit.systolic.
"""

from __future__ import annotations

import importlib

from labkit.dtypes import unknown_name


def resolve(namespace: dict, api: dict[str, str], name: str, what: str, choices=None):
    """The object `api[name]` names ("module:attr", or "module" for a whole module), cached in `namespace`.

    An unknown name raises AttributeError listing the near matches among `choices` (default: `api`'s names).

    >>> ns = {}
    >>> resolve(ns, {"sqrt": "math:sqrt"}, "sqrt", "demo name")(9.0)
    3.0
    """
    if name not in api:
        raise AttributeError(str(unknown_name(what, name, choices or api)))
    module, _, attr = api[name].partition(":")
    value = importlib.import_module(module)
    if attr:
        value = getattr(value, attr)
    namespace[name] = value
    return value


def namespace(module_globals: dict, api: dict[str, str], what: str):
    """A module's ``(__getattr__, __dir__)`` pair for a lazy namespace whose public names are `api`'s (PEP 562).

    >>> ns = {}
    >>> getattr_, dir_ = namespace(ns, {"sqrt": "math:sqrt"}, "demo name")
    >>> getattr_("sqrt")(4.0), dir_()
    (2.0, ['sqrt'])
    """
    names = sorted(api)

    def __getattr__(name: str):
        return resolve(module_globals, api, name, what)

    def __dir__():
        return names

    return __getattr__, __dir__
