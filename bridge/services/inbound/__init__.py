"""Platform events in: webhooks and polls, kept to what the store holds, applied once."""
