"""The data plane: the routing table taken from the inference service, and direct node calls."""
