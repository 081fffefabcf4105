"""`python -m app` runs pidone exactly as the `pidone` console script does."""

from app.cli import main

raise SystemExit(main())
