"""What every layer may use: the exception types, the console, atomic files, worker processes."""
