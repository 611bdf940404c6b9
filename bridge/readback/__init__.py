"""Reading Matrix back: the directory of room state, reconciliation and convergence."""
