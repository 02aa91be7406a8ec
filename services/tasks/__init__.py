"""Tasks: projects, members and the queue served to annotators."""
