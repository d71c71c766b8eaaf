import os


def home():
    return os.path.expanduser("~")


def config_dir():
    return os.path.join(home(), ".config")
