"""Presenter mode: the session for a projector and a room.

A screen over the main one (``P``, or ``--presenter``): the parameters and gradients in
large digits, the narration, the loss curve, a banner that lights up the phase of the
train step that just happened, slow motion (one phase every few seconds, the real
actions, so undo, the code and the narration follow), a colour-blind-safe theme and the
keys in large type.
"""
