"""Strongroom: on-premise data preparation with a tamper-evident audit trail."""
