"""Schemathesis hooks for `jpki serve`: binary request bodies for the OCSP and TSA media types.

Loaded by crates/cli/tests/serve_cli.rs with SCHEMATHESIS_HOOKS=st_hooks. JPKI_ST_OCSP may name
real OCSP requests (hex, comma-separated) to mix in with random bytes, so the responder's signing
path is exercised too.
"""
import os

import schemathesis
from hypothesis import strategies as st

_real = [bytes.fromhex(h) for h in os.environ.get("JPKI_ST_OCSP", "").split(",") if h]
_ocsp = st.one_of(st.binary(max_size=400), st.sampled_from(_real)) if _real else st.binary(max_size=400)
schemathesis.openapi.media_type("application/ocsp-request", _ocsp)
schemathesis.openapi.media_type("application/timestamp-query", st.binary(max_size=400))
