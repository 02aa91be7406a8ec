"""Ingestion: files in, documents out."""
