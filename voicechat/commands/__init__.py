"""One module per command (or command group); only typer and the standard library at import time."""
