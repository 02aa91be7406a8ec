"""Redaction: finds personal data in documents and masks it."""
