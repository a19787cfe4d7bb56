"""Services: orchestrate the domain, routing and the store for each use case."""
