"""Java source of ember's Spark block service (compiled at run time against the installed pyspark)."""
