"""`python -m webapp` is the `herald` command."""
from .main import main

main()
