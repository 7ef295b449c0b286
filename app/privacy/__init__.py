"""Personal data: encryption at rest with a blind index, export, erasure and retention."""
