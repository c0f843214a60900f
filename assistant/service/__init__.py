"""The daemon: its loop, the session store, resuming, the wiring of its parts and systemd."""
