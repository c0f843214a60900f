"""The pure core: the session, its schedule and notes, the method, texts, settings and record.

Nothing here touches audio, GPIO, files, the network or the wall clock (tests/test_layers.py
checks it), so a whole session runs in a test in milliseconds.
"""
