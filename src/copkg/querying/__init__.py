"""Running queries: the query workers' sandbox (the executor, safety checks and named queries
join this package as the code is arranged by stage)."""
