"""ASGI entry points for servers that import by name (granian, uvicorn --factory)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from graphattach.api.app import build_app
from graphattach.settings import Settings

ENV_VAR = "GRAPHATTACH_SETTINGS"


def settings_to_env(settings: Settings) -> str:
    values = dataclasses.asdict(settings)
    values["data_dir"] = str(settings.data_dir)
    return json.dumps(values)


def settings_from_env() -> Settings:
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return Settings()
    values: dict[str, Any] = json.loads(raw)
    values["data_dir"] = Path(values["data_dir"])
    return Settings(**values)


def create_app_from_env() -> Starlette:
    """Factory: the app for the settings ``graphattach serve`` put in ``$GRAPHATTACH_SETTINGS``."""
    return build_app(settings=settings_from_env())
