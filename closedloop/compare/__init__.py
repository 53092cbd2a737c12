"""Comparing two versions of a model: what changed when a new version shipped, and is it real."""
