"""predict: classify new videos with a trained head or class names given at run time, and label every moment."""
