"""Real backend servers for the cluster adapters' tests, started without Docker.

Each module obtains one server through a package registry, caches the
download or build under ``~/.cache/strongroom`` (``STRONGROOM_CACHE``),
starts it on loopback for the test session and stops it by PID. Each module
also defines its session fixture, so ``tests/conftest.py`` loads them all.
"""
