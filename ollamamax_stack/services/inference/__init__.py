"""The inference service: one big Ollama made of many Ollama nodes, with a status page."""

# The router counts in-flight requests per node in one process: a second worker would route
# on half the picture (README, "Workers"). Read by the registry through services/limits.py.
MAX_WORKERS = 1
MAX_WORKERS_WHY = ("its router counts in-flight requests per Ollama node in one process; "
                   "keep workers = 1")
