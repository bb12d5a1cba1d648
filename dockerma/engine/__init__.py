"""The docker engine side: the process runner, the docker CLI, probing, builders, local images."""
