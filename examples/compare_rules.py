"""The main job: every update rule of symopt, and the texts' forms, on the image data.

The work is in :mod:`symopt.lab.compare`, so that an installed package runs it too, as
``symopt compare``; this script is the same command for a source checkout. See that
module (or ``--help``) for what is trained and what is written.

    python examples/compare_rules.py                      # defaults: 10 epochs
    python examples/compare_rules.py --data embedded --epochs 5
    python examples/compare_rules.py --rules adam,sgd,book.adam --lr sgd=0.1
"""

from __future__ import annotations

from symopt.lab.compare import (  # noqa: F401  (the names the example tests use)
    bar_chart,
    default_forms,
    group_of,
    learning_rates,
    main,
    run,
    selected,
)

if __name__ == "__main__":
    main()
