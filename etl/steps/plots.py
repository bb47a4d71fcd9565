"""Plot loaders."""
