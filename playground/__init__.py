"""playground: a terminal training playground for teaching gradient descent with PyTorch."""

__version__ = "0.1.0"
