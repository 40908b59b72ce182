"""The lab: what studies of update rules need beside the library.

``import symopt`` does not load any of this; import the modules you use:

- :mod:`symopt.lab.nn`: dense layers, activations, initialisers, dropout, batch
  normalisation, the MLP;
- :mod:`symopt.lab.data`: MNIST-format IDX files, and the embedded Fashion-MNIST subset;
- :mod:`symopt.lab.training`: mini-batches, early stopping, the training loop;
- :mod:`symopt.lab.history` and :mod:`symopt.lab.progress`: records, figures, progress;
- :mod:`symopt.lab.diagnostics`: norms, NaN counts, gradient checks;
- :mod:`symopt.lab.forms` and :mod:`symopt.lab.problems`: every rule and text form behind
  one interface, and the problems they are compared on;
- :mod:`symopt.lab.curves` and :mod:`symopt.lab.pytest_plugin`: recorded curves with
  tolerance envelopes, for regression tests;
- :mod:`symopt.lab.kit`: what the example scripts share;
- :mod:`symopt.lab.sweep` (and ``sweep_grid``, ``sweep_problems``, ``sweep_worker``,
  ``sweep_log``, ``sweep_report``): grids of rules x hyperparameters x seeds x problems
  on Dask, with durable results, a summary and figures; :mod:`symopt.lab.cli`, the
  ``symopt`` console command (``symopt sweep``).
"""
