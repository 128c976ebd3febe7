"""The Textual user interface: the app, the training screen's panels (``training/``), the
autograd explorer's screen (``explorer/``) and the dialogs (``dialogs/``).

Never imports torch: tensors live on worker threads that ``playground.tui`` wires in.
"""
