"""ollamamax-stack: runs the OllamaMax stack from one port registry and keeps its ports honest."""

__version__ = "0.1.0"
