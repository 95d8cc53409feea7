"""Helpers shared by the commands, the benchmarks and the package's modules: options files,
atomic writes, Markdown tables, measuring networks, comparison figures, the allocator."""
