"""An SMTP server that requires AUTH (PLAIN or LOGIN) with one user and
password, for picomon's tests: auth_server.py HOST PORT MAILDIR USER PASSWORD.
Runs until SIGTERM or SIGINT."""

import signal
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from picomon_smtp import Handler


def main():
    host, port, maildir, user, password = sys.argv[1:6]

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok)

    controller = Controller(
        Handler(maildir),
        hostname=host,
        port=int(port),
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
