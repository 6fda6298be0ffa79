"""servewatch service."""
