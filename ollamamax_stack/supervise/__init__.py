"""Run the stack on supervisord: config, RPC, readiness, backoff, state, logs."""
