"""Registry client: pull and push models over the OCI distribution protocol, as Ollama does.

Modules: ``reference`` (model name -> registry URL, repository, tag), ``auth`` (challenges, basic and bearer
tokens, Docker config credentials), ``client`` (the v2 HTTP API and Ollama's error texts), ``transport``
(TLS made on first use), ``download`` (ranged parts, resume, verification) with ``parts`` (the plan and its
saved state), ``ranged`` (the bytes of one part) and ``ordered_hash`` (the sha256 beside the download),
``upload`` (HEAD skip, mount, monolithic and chunked),
``pull`` / ``push`` (the operations, with Ollama's progress lines), ``progress`` (the events), ``local`` (a
CNCF distribution registry on loopback, for tests and benchmarks).

Why the protocol is written here on httpx instead of using an OCI client library
---------------------------------------------------------------------------------
The maintained OCI client on PyPI is ``oras`` (oras-py, 0.2.x, on ``requests`` and ``jsonschema``); its
``Registry`` provider was read for this decision (0.2.41). Against what Ollama's pull and push need:

* Parallel ranged downloads with resume: not there. ``download_blob`` is one streaming GET written with
  ``open(outfile, "wb")`` in 8 KiB pieces: no ``Range``, no parallel parts, no partial state, and a dropped
  connection loses everything. This is the bulk of ``download.py`` and would have to be written anyway.
* Digest verification before the blob is used: not there (the downloaded file is not hashed).
* Per-layer progress: no callback; layers are pulled one after another to files named by the OCI
  ``org.opencontainers.image.title`` annotation, which Ollama's manifests do not have.
* Custom media types and byte-exact manifests: ``push`` builds its own OCI manifest (its config and
  annotations) from files, and ``get_manifest`` validates against the OCI schema and returns parsed JSON, so
  the served bytes (and with them Ollama's model digest) are lost. Corral must store the manifest bytes as
  served and push exactly what Ollama pushes.
* Token auth: covered (basic, and bearer with the challenge's realm, service and scope), as is a chunked
  upload (sequential PATCH). Cross-repository mount is not offered.

What would be reused is the part that is small here (the challenge parsing and the token request,
``auth.py``), at the cost of a second HTTP stack (``requests`` beside httpx, which Corral already uses) and a
manifest model that does not fit. ``oras`` is therefore not a dependency: the protocol is written here on
httpx (about 1500 lines with the downloader and the local registry runner), tested against a real CNCF
distribution registry in the three authentication set-ups. Only the bytes of large blobs bypass httpx, read
with the standard library's ``http.client`` into a reused buffer (``ranged.py`` says why and what it measured).
"""
