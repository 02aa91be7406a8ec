"""Ports, adapters and plumbing shared by every Strongroom service."""
