"""Durable relay: the outbox, its delivery worker, and signed events to bots."""
