"""The developer's tools that make and measure the models' committed artefacts.

They train the temporal scorer (temporal/: its data, replays and report), measure the offline
encoder on real footage and generate its committed label and language files (offline/). Their
outputs are committed under models/; the product only reads those files and never imports this
package. They replay footage through the live pipelines and services exactly as the detector
runs them, so they sit above the services in the import layers (pyproject.toml,
[tool.importlinter]), not in models/, which must not import upward.
"""
