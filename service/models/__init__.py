"""Business models: seeded training data, ONNX export with parity checks, BentoML registration."""
