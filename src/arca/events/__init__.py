"""The event log and what reads it: the HTTP feed and stream, and webhooks.

Fed by the registry's typed events (`arca.registry.events`); the /v2 core never
imports this package.
"""
