"""Ray-free results: an experiment's tables and what is computed from them, its folder and its config.

The trials table's schema and rows (``schema``, ``trial_rows``), the fronts (``pareto``), seed statistics
(``seedstats``), the scan dimensions (``dimensions``), the adaptive scan's space, metrics and policy
(``scan_space``, ``scan_metrics``, ``scan_policy``), the storage (``storage``: a local folder or S3),
the experiment folder's record, preflight and claim (``experiment_record``, ``claim``), the experiment
config (``experiment_config``), reading tables back (``tables``), comparing and plotting fronts
(``compare``, ``plot``), picking a point (``picking``) and re-costing a front (``recost``).

Above ``searchspace``, ``cost_models`` and ``trainables`` (it imports the first two), below
``orchestrator`` (the Ray run) and ``hwnas`` (the command line). Never imports Ray or torch.
"""
