"""Model: encoders, the joint model, sampling, the batch feed, the trainer and checkpoints (stage 03).

Reads what :mod:`zslkit.data` wrote; never evaluates beyond a model's own validation loss.
"""
