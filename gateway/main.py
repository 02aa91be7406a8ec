"""Wiring of the gateway process."""

from __future__ import annotations

import os

import uvicorn

from strongroom.gateway.app import create_app
from strongroom.services.common.config import Settings
from strongroom.services.common.logs import configure_logging
from strongroom.services.common.runtime import PRIVATE_UMASK


def main() -> None:
    os.umask(PRIVATE_UMASK)
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
        # With a certificate the gateway speaks HTTPS only.
        ssl_certfile=settings.tls_cert_file or None,
        ssl_keyfile=settings.tls_key_file or None,
    )
