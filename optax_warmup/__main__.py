"""`python -m optax_warmup` runs the `optax-warmup` command."""

from optax_warmup.cli import main

raise SystemExit(main())
