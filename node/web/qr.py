"""QR codes for the holder's pages, drawn on the server as SVG (segno), shown as data: images
(the Content-Security-Policy allows images from data:, never scripts)."""

from __future__ import annotations

import io

import segno


def voucher_text(region: str, voucher_id: str) -> str:
    """What a voucher's QR code carries: its issuing city and id, which anyone can look up
    and verify (the signed record, ``GET /v1/vouchers/{id}``; docs/records.md)."""
    return f"suanli:voucher:{region}:{voucher_id}"


def data_uri(text: str) -> str:
    uri: str = segno.make(text, error="m").svg_data_uri(scale=4, border=2)
    return uri


def svg(text: str) -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, border=2)
    return out.getvalue()
