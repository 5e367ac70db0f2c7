"""The Ray run of an experiment: the driver (``experiment.run_experiment``), its scan strategy (grid or
adaptive), the Tune ``Tuner`` and trainable, the per-run DRAM cost actor, the adaptive scan's ``Searcher``,
the live tables and the console.

Above ``results`` (the Ray-free tables, scan policy, storage and experiment folder it writes through) and
below ``hwnas`` (the command line). Importing this package loads no Ray; its modules do.
"""
