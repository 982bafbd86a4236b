"""Graph routes: attachments."""

from __future__ import annotations

from graphattach.api.call import Routes

ROUTES: Routes = {}
