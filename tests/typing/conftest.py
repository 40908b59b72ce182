# usage.py is for the type checker (mypy reads it; see pyproject's [tool.mypy]), not to run:
# pytest's --doctest-modules would import it, building graphs and writing a checkpoint.
collect_ignore = ["usage.py"]
