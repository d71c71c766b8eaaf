"""Next-edit prediction and jumps: edit history, propagation, Zeta-style model, LSP handlers."""

from .answer import ACCEPT_COMMAND
from .diffs import Change, minimal_changes
from .feature import NextEdits, register
from .history import EditEvent, EditHistory, Site
from .propagate import Candidate, Plan, order, plan

__all__ = [
    "ACCEPT_COMMAND",
    "Candidate",
    "Change",
    "EditEvent",
    "EditHistory",
    "NextEdits",
    "Plan",
    "Site",
    "minimal_changes",
    "order",
    "plan",
    "register",
]
