"""aiosmtpd handler for picomon's tests: a Maildir like aiosmtpd's own
Mailbox handler, plus a refusal (550) for recipients starting with
"reject", and one line per EHLO in DIR/../ehlo.log and per QUIT in
DIR/../quit.log, to count connections opened and closed."""

import os

from aiosmtpd.handlers import Mailbox


class Handler(Mailbox):
    def __init__(self, mail_dir):
        super().__init__(mail_dir)
        base = os.path.dirname(os.path.abspath(mail_dir))
        self.ehlo_log = os.path.join(base, "ehlo.log")
        self.quit_log = os.path.join(base, "quit.log")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with open(self.ehlo_log, "a") as log:
            log.write("%s %s\n" % (session.peer, hostname))
        session.host_name = hostname
        return responses

    async def handle_QUIT(self, server, session, envelope):
        with open(self.quit_log, "a") as log:
            log.write("%s\n" % (session.peer,))
        return "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 <%s>: no such user here" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"
