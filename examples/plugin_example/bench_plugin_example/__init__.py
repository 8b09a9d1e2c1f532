"""Example robust-gen-bench plug-in (see the README section "Benchmark your own model")."""
