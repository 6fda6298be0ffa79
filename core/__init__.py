"""servewatch core: configuration, the metric catalog, the public contracts, time and files."""
