"""Vosk models on disk: the model site's list, checking and installing a model.

The only package that may use the network (tests/test_layers.py checks it), and only when
the user runs ``intervisie model install`` or ``model list --available``.
"""
