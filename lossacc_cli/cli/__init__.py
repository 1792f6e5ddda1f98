"""Command-line interface (Typer): thin; parses, calls, renders, sets the exit code."""
