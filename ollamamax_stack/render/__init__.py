"""Renderers: the registry as files for systemd, Kubernetes, compose, Prometheus, env, front end."""
