"""servewatch dashboards."""
