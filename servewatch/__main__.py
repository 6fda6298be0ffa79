"""`python -m servewatch` is the `servewatch` command."""

from servewatch.cli import main

main()
