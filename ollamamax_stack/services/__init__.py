"""The stack's own programs: inference (+ status page), gateway, hub (also fallback)."""
