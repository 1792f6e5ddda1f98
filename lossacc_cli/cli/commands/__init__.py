"""One module per command; each registers itself on the app in :mod:`lossacc_cli.cli.app`."""
