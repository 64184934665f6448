"""Datasets: loading real FER data and drawing a synthetic stand-in for offline runs."""
