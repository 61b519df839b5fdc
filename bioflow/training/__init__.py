"""Training machinery: strategies, optimisers, the distributed loop and the run directory."""
