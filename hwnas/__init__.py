"""hwnas: hardware-aware neural architecture search on Ray.

The top tier: ``hwnas.cli`` (the ``hwnas`` command) sits over every other package (``orchestrator``,
``results``, ``trainables``, ``cost_models``, ``searchspace``) and nothing imports it. Importing
``hwnas`` loads neither Ray nor torch.
"""
