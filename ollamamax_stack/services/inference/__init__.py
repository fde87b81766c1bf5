"""The inference service: one big Ollama made of many Ollama nodes, with a status page."""
