"""`python -m service` is the `servewatch` command."""

from service.cli import main

main()
