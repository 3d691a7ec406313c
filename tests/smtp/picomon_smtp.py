"""aiosmtpd handler for picomon's tests: a Maildir like aiosmtpd's own
Mailbox handler, plus faults the tests switch on with files beside the
Maildir (in DIR/..):

- recipients starting with "reject" are refused for good (550);
- recipients starting with "later" are refused for now (450) while the
  file "defer" exists;
- every message is refused after DATA (554) while "refuse-data" exists;
- each DATA takes as many seconds as "slow" holds, if it exists.

One line per EHLO in DIR/../ehlo.log and per QUIT in DIR/../quit.log
count the connections opened and closed."""

import asyncio
import os

from aiosmtpd.handlers import Mailbox


class Handler(Mailbox):
    def __init__(self, mail_dir):
        super().__init__(mail_dir)
        self.base = os.path.dirname(os.path.abspath(mail_dir))
        self.ehlo_log = os.path.join(self.base, "ehlo.log")
        self.quit_log = os.path.join(self.base, "quit.log")

    def flag(self, name):
        return os.path.exists(os.path.join(self.base, name))

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
        if address.startswith("later") and self.flag("defer"):
            return "450 4.2.1 <%s>: mailbox busy, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        slow = os.path.join(self.base, "slow")
        if os.path.exists(slow):
            try:
                with open(slow) as f:
                    await asyncio.sleep(float(f.read().strip() or "0"))
            except (OSError, ValueError):
                pass
        if self.flag("refuse-data"):
            return "554 5.6.0 message refused by policy"
        return await super().handle_DATA(server, session, envelope)
