"""Crash points for fault tests: ``SUANLI_CRASH_AT=name[,name…]`` makes the process kill -9
itself the first time it reaches a named point, exactly as a power cut there would.

Points (``<type>`` is the message type, lower case: authorize, capture, void, redeem):

* ``acquirer.before_send.<type>``  the intent is committed to the outbox, nothing sent yet
* ``issuer.after_commit.<type>``   the issuer committed the effect, the reply is not sent
* ``acquirer.before_apply.<type>`` the signed reply arrived, it is not applied yet
* ``settlement.after_close``       a window's close committed, its payouts not signed yet
* ``settlement.after_payment``     a payment to a provider committed, the answer not sent
* ``issuer.after_statement``       the issuer compared (and countersigned), reply not sent
* ``acquirer.before_statement_store`` the issuer's answer to a statement arrived, not stored
* ``clearing.after_record``       the payer committed a transfer and its advice, nothing sent
* ``clearing.after_advice``       the payee accepted a TRANSFER_ADVICE, its ACK not sent
* ``clearing.after_answer``       the payee's operator confirmed or disputed, nothing sent
* ``clearing.after_confirmation`` the payer applied a RECEIPT_CONFIRMATION, its ACK not sent
  (and ``acquirer.before_apply.transfer_advice`` / ``.receipt_confirmation``: an ACK arrived,
  not applied)

Unset (always, in production), a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import logging
import os
import signal

logger = logging.getLogger(__name__)

_POINTS = frozenset(p for p in os.environ.get("SUANLI_CRASH_AT", "").split(",") if p)


def crash_point(name: str) -> None:
    if name in _POINTS:
        logger.critical("crash point %s reached: kill -9", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
