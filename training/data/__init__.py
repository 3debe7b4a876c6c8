"""The Vital dataset: generation with the Vital engine, HDF5 files, precomputed mels, a torch Dataset.

Modules import torch, h5py and vita where they need them, so `zoo --help` stays fast.
"""
