"""The ``playground`` command line: ``main`` (in ``main.py``) and one module per subcommand."""
