"""HTTP handlers, one module per resource: validate, call the service, respond."""
