"""The job layer: every step ``idff <step>`` runs, spec (a config slice) in, files out.

``jobs`` (prepare, train, tune, sweep, floor, sample), ``products`` (rollout, forecast,
samples: a family's own products for figures) and ``iterations`` (iter-eval) build networks
and generators (``network``), read tuned parameters (``tuned``) and call the data family's
hooks. Families never import this package; the report never does either.
"""
