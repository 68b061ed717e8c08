"""Data sets: one module per family (toy, images, md, sst)."""
