"""The native JSON API under /api/v1/."""
