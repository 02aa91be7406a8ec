"""Labeling: annotations on tasks."""
