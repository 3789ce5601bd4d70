from lastgood.cli.app import entrypoint

entrypoint()
