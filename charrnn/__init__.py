"""char-rnn (karpathy/char-rnn, 2015) in PyTorch: multi-layer character-level language models."""
