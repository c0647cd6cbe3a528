"""Errors, config and shared types. Imports nothing else from the package."""
