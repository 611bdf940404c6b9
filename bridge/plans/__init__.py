"""Pure plans: from the model to the room changes an operation makes, no I/O."""
