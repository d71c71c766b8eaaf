# ruff: noqa: F401 - typing is used in the type comments only
"""Hooks by name, annotated in type comments."""

import typing


class Registry:
    """Holds the hooks of each event."""

    def __init__(self):
        self._hooks = {}  # type: typing.Dict[str, typing.List[str]]
        self._order = []  # type: typing.List[str]
        self._seen = set()

    def add(self, event, hook):
        self._hooks.setdefault(event, []).append(hook)
        self._order.append(event)
        self._seen.add(hook)

    def names(self):
        counts = {}  # type: typing.Dict[str, int]
        for event in self._order:
            counts[event] = counts.get(event, 0) + 1
        return counts

    def clear(self):
        self._hooks.clear()
        self._order.clear()


def merged(first, second):
    out = {}  # type: typing.Dict[str, typing.List[str]]
    for part in (first, second):
        out.update(part)
    return out
