"""Preparing the packaged models the roles use, with `$/progress` while a model is assembled.

The default model arrives as six PyPI pieces and is assembled into the user
cache once (~491 MB written and hashed, a few seconds); a server started before
`lowentropy models --prepare` ever ran shows that as a progress bar instead of
a silent wait before the first suggestion.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from lsprotocol import types

from lowentropy.models.packaged import (
    PACKAGED_MODELS,
    PackagedModel,
    default_model,
    is_ready,
    model_path,
)
from lowentropy.models.types import ROLES

if TYPE_CHECKING:
    from .app import LowEntropyServer

log = logging.getLogger(__name__)


def packaged_models_in_use(ls: LowEntropyServer) -> list[PackagedModel]:
    """The packaged models of the roles that run on the embedded engine, each once."""
    found: list[PackagedModel] = []
    for role in ROLES:
        config = ls.settings.role(role)
        if role == "embed" or not config.embedded:
            continue
        model = default_model() if not config.model_path else PACKAGED_MODELS.get(config.model_path)
        if model is not None and model not in found:
            found.append(model)
    return found


async def prepare_packaged_models(ls: LowEntropyServer) -> None:
    """Assemble and verify what the roles need, reporting `$/progress` when the client can
    show it. A missing or corrupt piece raises PackagedModelError (the caller shows it)."""
    for model in packaged_models_in_use(ls):
        if is_ready(model):
            continue
        await _prepare(ls, model)


async def _prepare(ls: LowEntropyServer, model: PackagedModel) -> None:
    loop = asyncio.get_running_loop()
    token = await _progress_token(ls)
    verb = "assembling" if model.assembled else "verifying"
    last = -1

    def report(done: int, total: int) -> None:
        nonlocal last
        percentage = done * 100 // max(total, 1)
        if token is None or percentage == last:
            return
        last = percentage
        message = f"{done / 1e6:.0f}/{total / 1e6:.0f} MB"
        loop.call_soon_threadsafe(
            ls.work_done_progress.report,
            token,
            types.WorkDoneProgressReport(message=message, percentage=percentage),
        )

    if token is not None:
        ls.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(title=f"lowentropy: {verb} {model.title}", percentage=0),
        )
    log.info("%s %s", verb, model.title)
    try:
        path = await asyncio.to_thread(model_path, model, report)
    finally:
        if token is not None:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))
    log.info("%s ready at %s", model.title, path)


async def _progress_token(ls: LowEntropyServer) -> str | None:
    caps = ls.client_capabilities.window
    if caps is None or not caps.work_done_progress:
        return None
    token = f"lowentropy-model-{uuid.uuid4().hex[:8]}"
    try:
        await ls.work_done_progress.create_async(token)
    except Exception as exc:  # the client said no: prepare without a progress bar
        log.info("no progress bar for the model: %s", exc)
        return None
    return token
