"""Ports on the host and in files: probing, holders, drift extractors, findings."""
