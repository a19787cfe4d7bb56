"""The contracts the core needs; adapters implement them and the core only uses them.

`agent_side` (live-chat platforms), `bot_side` (bot platforms and the gateway they call),
`context` (what every adapter is built with), `http` (the app's one HTTP client),
`links` (the console's signed links) and `wake` (wake-ups across replicas).
"""
