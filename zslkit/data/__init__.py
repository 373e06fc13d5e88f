"""Data: audio files become a dataset folder, a tag split and side-information tables (stages 01-02).

The paper's log-mel front end (:mod:`.audio`), the resumable batch job that computes it
(:mod:`.preprocess`), the mel store and training packs (:mod:`.melstore`, :mod:`.melpack`), the
dataset format and its importers (:mod:`.datasets`), tag and track splits (:mod:`.splits`) and side
information (:mod:`.sideinfo`). Nothing here imports torch.
"""
