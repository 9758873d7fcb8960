"""What the tests share, imported as ``helpers.NAME`` (``tests/`` is on pytest's path): data
they make (:mod:`~helpers.data`), runs (:mod:`~helpers.runs`), the bad-input corpus, the fuzz
mutator, other processes (:mod:`~helpers.processes`) and the bundle's runner. Fixtures live in
``conftest.py``; no test imports from it or from another test module."""
