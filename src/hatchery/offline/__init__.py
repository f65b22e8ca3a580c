"""Offline media makers of the built-in ``local`` provider.

Everything here is made on the CPU with classical algorithms and bundled data
(eSpeak NG formant speech, procedural sound synthesis, stylised drawing, ...): no network, no
model weights, and none of it is an AI model. Every output says in its description what made it.
"""
