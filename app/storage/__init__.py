"""Adapters: the Redis job store and the object stores."""
