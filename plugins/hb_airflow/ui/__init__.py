"""The Hyperband dashboard: an authenticated FastAPI app inside Airflow's API server.

:data:`dashboard_app` is what the plugin registers. It is a thin ASGI wrapper
that builds the real app (:func:`hb_airflow.ui.app.create_app`) on its first
request, so that loading the plugin (which every Airflow process does: the
scheduler, the triggerer, each task) never imports FastAPI or the API
server's security modules; only the API server, which serves it, does.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["DashboardApp", "dashboard_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class DashboardApp:
    """An ASGI app that creates the dashboard's FastAPI app when first called, then delegates to it."""

    def __init__(self) -> None:
        self._app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from hb_airflow.ui.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


dashboard_app = DashboardApp()
