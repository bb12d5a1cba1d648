"""One module per section of the benchmarks' output; each `bench(...)` prints its table and
returns whether its target was met."""
