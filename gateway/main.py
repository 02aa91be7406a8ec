"""Wiring of the gateway process."""

from __future__ import annotations

import uvicorn

from strongroom.gateway.app import create_app
from strongroom.services.common.config import Settings
from strongroom.services.common.logs import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging("gateway", settings.log_level)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        access_log=False,
        server_header=False,
    )
