"""MUSDB18-HQ evaluation: museval and global SDR scores, oracle upper bounds,
blend tuning and reports (``python -m evaluation``). The challenges' graders
and submitting live in :mod:`challenge`."""
