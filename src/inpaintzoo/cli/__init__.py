"""Command-line entry points (train, eval, predict, export, leaderboard)."""

import warnings

# Lightning 2.6's pytree helper trips torch's own LeafSpec deprecation on every fit: noise for
# our users (nothing they can act on), so the entry points hide that one message.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
