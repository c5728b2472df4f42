"""Code that only tests and demos use (no experiment's library code imports it).

- shapes.py: the synthetic shapes world (scenes with known captions and boxes) for neuraltalk and densecap.
- t7_writer.py: writes look-alike `.t7` files for the cases real Torch7 cannot make here (CUDA storages).
- lstm_reference.py: char-rnn's LSTM written per timestep as model/LSTM.lua does, the reference the fused path is tested against.
"""
