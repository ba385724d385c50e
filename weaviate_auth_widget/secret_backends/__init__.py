"""Backends behind :class:`weaviate_auth_widget.secrets.SecretStore`.

``file``: the project's own ``secrets.json`` store (plain 0600 or AES-GCM encrypted).
``os_keyring``: choosing, naming and calling a real OS keyring without ever hanging.
"""
