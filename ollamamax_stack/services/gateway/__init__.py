"""The OpenAI-compatible gateway: /v1 over the inference service, /auth, /chat, /docs."""
