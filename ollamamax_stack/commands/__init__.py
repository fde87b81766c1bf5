"""One module per command group; each registers itself on the root typer app."""
