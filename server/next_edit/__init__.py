"""Next-edit prediction and jumps: edit history, propagation, Zeta-style model, LSP handlers."""

from .diffs import Change, minimal_changes
from .feature import ACCEPT_COMMAND, NextEdits, register
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
