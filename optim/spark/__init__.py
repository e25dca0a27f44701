"""The Spark step engine: plan (how a global batch is dealt over partitions), parameter (the
block-partitioned weights), trainer (the per-partition function), blocks (the block service
client), data (sample RDDs), context (``init_nncontext``) and engine (the jobs)."""
