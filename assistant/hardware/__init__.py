"""GPIO: the button on the table (or the keyboard standing in for it) and the status LED."""
