"""The running stack as people watch it: rows of services and workers with their processes'
CPU and memory (`status`, `status --watch`), and the live view `ollamamax top` (Textual)."""
