"""Adapters behind the ports: the embedded defaults and the cluster ones."""
