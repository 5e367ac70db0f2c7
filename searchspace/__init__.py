"""The search space, torch-free: the operator registry (``ops``), network geometry (``layout``),
genotypes (``genotype``), operator groups (``groups``) and the trial configuration (``config``).

The bottom layer: ``cost_models``, the search core (``trainables``) and ``orchestrator`` all read it;
it imports none of them (nor torch, nor Ray).
"""
