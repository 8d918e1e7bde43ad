"""``pubctl import NAME``: a release record from results made outside pubctl (pipeline.importing.run).

- ``files``: reading what is imported (regular files only, bounded) and copying model folders;
- ``declared``: the config values a user wrote, the only ones that may stand in for what no file holds;
- ``training``: the training section from TRL's trainer_state.json;
- ``evaluation``: the evaluation section from lm-eval's --output_path files;
- ``model``: the copied adapter and merged model, measured (files, parameters, dtype, parity);
- ``run``: the command, its declaration and the order nothing is written in before everything is read.

Importing this package imports no heavy library.
"""
