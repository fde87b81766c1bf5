"""The chat page: static ES modules served at `/` by the gateway, the hub and the fallback."""
