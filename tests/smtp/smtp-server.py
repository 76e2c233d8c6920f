"""Runs a real SMTP server (aiosmtpd) on 127.0.0.1 for the mail tests.

Binds a free port and prints `SMTP_URL=smtp://127.0.0.1:<port>` once it accepts
connections. It requires AUTH (PLAIN or LOGIN, allowed without TLS on loopback) with the
user and password given as arguments, so the credentials in the URL are exercised. Each
message delivered is printed as one line `MAIL=<json>`, with the envelope (`mail_from`,
`rcpt_tos`) and the parsed message (`subject`, `from`, `to`, `text`, `html`). Exits when
its stdin reaches EOF, so a test process that dies leaves nothing behind.

    smtp-server.py USER PASSWORD
"""
import asyncio
import email
import email.policy
import json
import logging
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Printer:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(message.get("subject", "")),
            "from": str(message.get("from", "")),
            "to": str(message.get("to", "")),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        print("MAIL=" + json.dumps(record), flush=True)
        return "250 OK"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok)

    return check


async def main() -> None:
    # aiosmtpd warns that AUTH without TLS is unsafe: this server listens on loopback only.
    warnings.filterwarnings("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    user, password = sys.argv[1], sys.argv[2]
    loop = asyncio.get_running_loop()
    check = authenticator(user, password)
    server = await loop.create_server(
        lambda: SMTP(
            Printer(),
            hostname="rookery-test-smtp",
            auth_required=True,
            auth_require_tls=False,
            authenticator=check,
        ),
        host="127.0.0.1",
        port=0,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"SMTP_URL=smtp://127.0.0.1:{port}", flush=True)
    # Block on stdin in a thread; EOF (the test process closed it or died) stops the server.
    await loop.run_in_executor(None, lambda: sys.stdin.buffer.read())
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
