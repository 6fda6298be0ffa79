"""The `servewatch` command line: the one package that imports every other."""
