"""The shell every API dialect stands in: what a dialect is, how it is found and mounted, and the
one request pipeline (raw request, signature check, clock window, nonce replay, throttling) that
each dialect calls with its own signature scheme.

Dialects import this package (plus ``app.core`` and ``app.settings``); ``app.web`` imports it to
mount them. Nothing here imports a dialect by name: ``registry`` finds them by scanning the
``app.dialects`` package, so adding a dialect touches no file outside its own package.
"""
