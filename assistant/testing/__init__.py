"""Test support shared by the tests and the benchmark: a file sound card, a FIFO microphone,
a dither-free model and espeak-ng speech for it."""
