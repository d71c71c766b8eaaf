"""Module docstring."""

import functools


# Retry helper: keeps calling until it works.
@functools.cache
@staticmethod
def retry(func, attempts=3):
    for _ in range(attempts):
        try:
            return func()
        except OSError:
            continue


class Cache:
    """A tiny cache."""

    def get(self, key):
        return self._data.get(key)

    @property
    def size(self):
        return len(self._data)


TIMEOUT = 30
