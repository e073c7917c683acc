"""From model to report: experiment specs, a caching runner, and Markdown/HTML rendering.

- :mod:`interp.report.specs`: one experiment = one TOML file in ``experiments/`` (analysis function,
  parameters, seed, the command that reproduces it).
- :mod:`interp.report.runner`: runs experiments, caching each one's materialised output under a key built
  from the model's weight hash, the analysis, its parameters and the seed; writes the manifest.
- :mod:`interp.report.render`: ``report.md`` and a self-contained ``index.html`` (embedded figures, sortable
  tables, an attention-pattern viewer).

Every analysis is used through the same shape, `interp.analysis.result`: ``run_x(model, params, progress) ->
result`` with ``to_json()``, ``tables()``, ``figures()``, ``summary_markdown()`` and ``findings()``; the report
only renders results (key findings come from ``findings.json``), it computes nothing of an analysis.
"""
