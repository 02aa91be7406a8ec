"""Audit: the hash-chained, searchable record of everything that happened."""
