"""Platform adapters: thin translators between bridge models and each platform's wire format."""
