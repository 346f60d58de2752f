"""Training datasets, benchmark readers, and the synthetic benchmark generator."""
