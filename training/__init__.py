"""Training: dataset generation with Vital, the training engine, evaluation and export."""
