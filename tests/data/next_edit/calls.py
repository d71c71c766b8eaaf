import logging

log = logging.getLogger(__name__)
VERBOSE = False


def report(user, verbose, detail):
    log.info("%s %s %s", user, verbose, detail)


report("ann", VERBOSE, "first")
report("bob", VERBOSE, "second")
report("cid", VERBOSE, "third")
