"""Evaluation stage: metrics, retrieval, open set, plots, reports and free-text search."""
