"""ASGI entry points for servers that import by name (granian, uvicorn --factory)."""

from __future__ import annotations

from starlette.applications import Starlette

from graphattach.api.app import build_app
from graphattach.settings import ENV_VAR, settings_from_env, settings_to_env

__all__ = ["ENV_VAR", "create_app_from_env", "settings_from_env", "settings_to_env"]


def create_app_from_env() -> Starlette:
    """Factory: the app for the settings ``graphattach serve`` put in ``$GRAPHATTACH_SETTINGS``."""
    return build_app(settings=settings_from_env())
