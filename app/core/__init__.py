"""The job model: stdlib only, no I/O, no framework imports.

Every API dialect and every worker speaks in these types; dialects only translate.
"""
