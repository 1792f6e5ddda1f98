"""lossacc: explain why validation loss rises while validation accuracy rises too."""

__version__ = "0.1.0"
