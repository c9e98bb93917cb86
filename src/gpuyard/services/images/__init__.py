"""Images: the catalog (records users launch from), the registries images are pushed to
and pulled from (credentials encrypted at rest), and the images present on each host,
reached through the runtime of the host's cluster kind (the docker agent)."""
