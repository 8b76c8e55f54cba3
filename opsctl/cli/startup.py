"""The cyclic garbage collector while a command starts.

Starting a command builds a few hundred thousand objects that live as long as the process
(modules, pydantic validators, SQLAlchemy tables and dialects, dataclasses) and almost no
garbage, yet CPython's collector runs over all of them again and again as they pile up:
about a tenth of a short job's CPU. The process entry point turns collection off until the
command's own work begins; then what start-up built goes to the permanent generation
(``gc.freeze``), so it is never walked again, and collection is turned back on for the
work, so a long job collects its garbage as usual.

Only the real process does this (:func:`opsctl.cli.main.run`); ``main()`` called in-process
(tests, embedding) leaves the collector alone.
"""

from __future__ import annotations

import gc

_deferred = False


def defer_collection() -> None:
    global _deferred
    if gc.isenabled():
        gc.disable()
        _deferred = True


def work_begins() -> None:
    """Collection back on, start-up's objects set aside; a no-op unless deferred."""
    global _deferred
    if _deferred:
        _deferred = False
        gc.freeze()
        gc.enable()
