"""servewatch monitors."""
