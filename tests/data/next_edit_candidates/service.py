import json
import os
from argparse import ArgumentParser


def build_parser():
    parser = ArgumentParser(prog="service")
    parser.add_argument("--host", type=str)
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    return parser


def fetch(url):
    return {"url": url}


def settings_path():
    return os.path.join("~", ".service")


def render(payload):
    body = json.dumps(payload)
    return body


def main():
    args = build_parser().parse_args()
    data = fetch(args.host)
    print(render(data))


class Limits:
    """What one request may use."""

    retries: int = 3
    timeout: int = 30
    max_bytes: int = 1024
