"""servewatch storage."""
