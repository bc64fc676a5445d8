"""Maintenance tools for the course's notebooks (not needed by students)."""
