"""Listening sockets held by the stack and handed to each service process (SCM_RIGHTS)."""
