"""Evaluate: embeddings of trained models (stage 04), the paper's protocol, metrics, zero-shot heads and
diagnostics (stage 05).

Reads checkpoints to embed; evaluation proper reads embeddings only and never trains a network.
"""
