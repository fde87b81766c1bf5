"""The WebSocket hub (also the fallback): `/chat` streamed from the inference service."""
