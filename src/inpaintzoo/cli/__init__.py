"""Command-line entry points (train, eval, predict, leaderboard)."""
