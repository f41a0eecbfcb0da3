"""Lifecycle of stored content: garbage collection, the trash, scrub."""
