"""The room's login: a learner's name and the password shared by the room.

Loaded by JupyterHub (``c.JupyterHub.authenticator_class``), never by labkit itself: it
imports jupyterhub. The password is read from the environment variable named by
``password_env`` (not written into the hub's config file); only the hub's learners
(``allowed_users``) may log in.
"""

from __future__ import annotations

import hmac
import os

from jupyterhub.auth import Authenticator
from traitlets import Unicode


class RoomAuthenticator(Authenticator):
    """Accepts an allowed learner with the room's shared password."""

    password_env = Unicode("LABKIT_HUB_PASSWORD",
                           help="environment variable holding the room's password").tag(
        config=True)

    async def authenticate(self, handler: object, data: dict[str, str]) -> str | None:
        """The learner's name when the password matches and the name is allowed."""
        expected = os.environ.get(self.password_env, "")
        given = data.get("password", "")
        name = self.normalize_username(data.get("username", ""))
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return None
        return name if name in self.allowed_users else None
