"""What each role may do on screen. The services enforce the same through the user's scopes
(shared.auth.ROLE_SCOPES); the console hides what a role may not use and refuses it too."""

from __future__ import annotations

from typing import Literal

from shared.auth import ROLE_SCOPES, ROLES, Role

Action = Literal["read", "review", "reply", "correct", "draft", "approve", "manage", "admin"]

#: The scope an action needs at the services; `admin` holds all.
_ACTION_SCOPE: dict[Action, str] = {
    "read": "read",
    "review": "review:write",
    "reply": "review:write",
    "correct": "review:write",
    "draft": "posts:write",
    "approve": "posts:approve",
    "manage": "rules:write",
    "admin": "admin",
}

#: The least role that may do each action, to name it when a user may not ("needs reviewer").
_LEAST_ROLE: dict[Action, Role] = {
    "read": "viewer",
    "review": "reviewer",
    "reply": "reviewer",
    "correct": "reviewer",
    "draft": "editor",
    "approve": "manager",
    "manage": "manager",
    "admin": "admin",
}


def may(role: Role, action: Action) -> bool:
    """Whether `role` may do `action`."""
    scopes = ROLE_SCOPES[role]
    return "admin" in scopes or _ACTION_SCOPE[action] in scopes


def role_needed(action: Action) -> Role:
    """The least role that may do `action`, for "needs the reviewer role" messages."""
    return _LEAST_ROLE[action]


def is_role(value: str) -> bool:
    return value in ROLES
