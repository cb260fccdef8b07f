"""Training stage: temporal heads and order-blind baselines over cached frame embeddings."""
