import logging

log = logging.getLogger(__name__)


def report(user, level, detail):
    log.info("%s %s %s", user, level, detail)


report("ann", "debug", "first")
report("bob", "info", "second")
report("cid", "warn", "third")
