"""The data folder: the running session's journal, kept records, reports, retention."""
