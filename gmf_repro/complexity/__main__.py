"""`python -m gmf_repro.complexity`: see cli.py."""
import sys

from .cli import main

sys.exit(main())
