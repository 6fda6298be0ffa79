"""servewatch alerts."""
