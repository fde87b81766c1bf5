"""What every service shares: settings, sockets, health, metrics, CORS, auth, drain."""
