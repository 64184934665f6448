"""ferbench: fair, repeated, apples-to-apples benchmarks of published FER models."""
__version__ = "0.1.0"
