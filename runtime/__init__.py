"""The job runtime: batch runs of the graphs over suites and pairs, run directories, checkpointers, shards, merge and
reports. The graphs themselves live in `graphs/`."""
