from lastgood.cli.entry import entrypoint

entrypoint()
