"""The weekly FinOps report: pure figures, tables and charts, rendered pages, the command."""
