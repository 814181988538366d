#!/usr/bin/env python3
"""Talks to a JPKI card in a PC/SC reader with pyscard, the way public JPKI clients do, and
prints one JSON object on stdout for crates/cli/tests/card_interop.rs to assert on.

    pyscard_reads.py reads READER          certificate reads (5 client patterns) + status words
    pyscard_reads.py verify READER HEXPIN  SELECT JPKI AP, SELECT 0018, VERIFY with the PIN
                                           (hex of its ASCII; "" sends an empty VERIFY)

Every APDU is plain ISO 7816-4 as the clients send it; this script interprets nothing beyond
what the client it imitates would (the assertions are in the Rust test). Exit status 0 whenever
the card answered, whatever it answered; 2 on usage errors, 1 when the reader or card is
unreachable.
"""

import json
import sys
import time

from smartcard.System import readers
from smartcard.Exceptions import CardConnectionException, NoCardException

JPKI_AP = bytes.fromhex("D392F000260100000001")
PIV_AID_SHORT = bytes.fromhex("A000000308")
PIV_AID_FULL = bytes.fromhex("A000000308000010000100")
AUTH_CERT = 0x000A
AUTH_CA = 0x000B
SIGN_CERT = 0x0001
AUTH_KEY = 0x0017
AUTH_PIN = 0x0018


class Card:
    def __init__(self, reader_name, wait=5.0):
        deadline = time.monotonic() + wait
        last = None
        while True:
            try:
                found = [r for r in readers() if str(r) == reader_name]
                if not found:
                    raise NoCardException("no reader named %r" % reader_name, 0)
                conn = found[0].createConnection()
                conn.connect()
                self.conn = conn
                return
            except (CardConnectionException, NoCardException) as e:
                last = e
            if time.monotonic() > deadline:
                raise SystemExit("pyscard: cannot connect to %r: %s" % (reader_name, last))
            time.sleep(0.05)

    def send(self, apdu):
        """One APDU (bytes) → (data bytes, SW as 4 upper-case hex digits). No 61xx/6Cxx follow-up:
        the clients imitated here do not need it, and the test wants the raw answers."""
        data, sw1, sw2 = self.conn.transmit(list(apdu))
        return bytes(data), "%02X%02X" % (sw1, sw2)

    def select_ap(self, aid=JPKI_AP, p2=0x0C):
        return self.send(bytes([0x00, 0xA4, 0x04, p2, len(aid)]) + aid)[1]

    def select_ef(self, fid):
        return self.send(bytes([0x00, 0xA4, 0x02, 0x0C, 0x02, fid >> 8, fid & 0xFF]))[1]

    def read(self, offset, le):
        """READ BINARY with a 15-bit offset and a short Le (256 is sent as 00)."""
        return self.send(bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, le & 0xFF]))

    def close(self):
        try:
            self.conn.disconnect()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


class ReadFailed(Exception):
    pass


def need(ok_sws, got, what):
    if got not in ok_sws:
        raise ReadFailed("%s: SW %s" % (what, got))


def ber_total(header):
    """Total length (tag + length + value) of a BER TLV with a one-byte tag from its first bytes."""
    if len(header) < 2:
        raise ReadFailed("header too short: %s" % header.hex())
    first = header[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 3 or len(header) < 2 + n:
        raise ReadFailed("unsupported BER length in %s" % header.hex())
    return 2 + n + int.from_bytes(header[2 : 2 + n], "big")


def pattern_opensc(card, fid):
    """OpenSC card-jpki.c / c-3lab: 4-byte header, size ((b2<<8)|b3)+4, then 256-byte chunks from
    offset 0 (Le 00) and a final exact-length read."""
    need({"9000"}, card.select_ap(), "select JPKI AP")
    need({"9000"}, card.select_ef(fid), "select EF")
    head, sw = card.read(0, 4)
    need({"9000"}, sw, "4-byte header read")
    size = ((head[2] << 8) | head[3]) + 4
    out = b""
    while len(out) < size:
        want = min(256, size - len(out))
        data, sw = card.read(len(out), want)
        need({"9000"}, sw, "chunk at %d (Le %d)" % (len(out), want))
        if not data:
            raise ReadFailed("empty chunk at %d" % len(out))
        out += data
    return out


def pattern_myna(card, fid):
    """jpki/myna, jpki-rs: 7-byte read, BER length, then the rest from offset 7 (Le up to 255)."""
    need({"9000"}, card.select_ap(), "select JPKI AP")
    need({"9000"}, card.select_ef(fid), "select EF")
    head, sw = card.read(0, 7)
    need({"9000"}, sw, "7-byte header read")
    size = ber_total(head)
    out = head
    while len(out) < size:
        want = min(0xFF, size - len(out))
        data, sw = card.read(len(out), want)
        need({"9000"}, sw, "rest at %d (Le %d)" % (len(out), want))
        if not data:
            raise ReadFailed("empty read at %d" % len(out))
        out += data
    return out


def pattern_myna_card(card, fid):
    """soltia48/myna-card: a 256-byte read (Le 00), parse the length, keep reading with Le 00 (a
    short last answer with 9000 or 6282 ends the file), cut to the parsed length."""
    need({"9000"}, card.select_ap(), "select JPKI AP")
    need({"9000"}, card.select_ef(fid), "select EF")
    out, sw = card.read(0, 256)
    need({"9000", "6282"}, sw, "first 256-byte read")
    size = ber_total(out)
    while len(out) < size:
        data, sw = card.read(len(out), 256)
        need({"9000", "6282"}, sw, "256-byte read at %d" % len(out))
        if not data:
            raise ReadFailed("empty read at %d" % len(out))
        out += data
    return out[:size]


def pattern_extended(card, fid):
    """AokiApp/jsapdu: one READ BINARY with extended Le 00 00 00 → the whole file."""
    need({"9000"}, card.select_ap(), "select JPKI AP")
    need({"9000"}, card.select_ef(fid), "select EF")
    data, sw = card.send(bytes([0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00]))
    need({"9000"}, sw, "extended-Le read")
    return data


def pattern_sfi(card, fid):
    """Short file identifier: select only the AP (then a different EF, to show the SFI wins), read
    with P1 = 80|SFI, P2 = offset; the EF is current afterwards, so continue with 15-bit offsets."""
    need({"9000"}, card.select_ap(), "select JPKI AP")
    other = AUTH_CA if fid == AUTH_CERT else AUTH_CERT
    need({"9000"}, card.select_ef(other), "select another EF")
    out, sw = card.send(bytes([0x00, 0xB0, 0x80 | fid, 0x00, 0x00]))
    need({"9000", "6282"}, sw, "SFI read at offset 0")
    size = ber_total(out)
    # P2 is an offset in the SFI form too: 16 bytes at offset 16 must be the same bytes.
    mid, sw = card.send(bytes([0x00, 0xB0, 0x80 | fid, 0x10, 0x10]))
    need({"9000"}, sw, "SFI read at offset 16")
    if mid != out[16:32]:
        raise ReadFailed("SFI read at offset 16 gave %s, not %s" % (mid.hex(), out[16:32].hex()))
    while len(out) < size:
        data, sw = card.read(len(out), min(256, size - len(out)))
        need({"9000"}, sw, "offset read at %d after the SFI read" % len(out))
        if not data:
            raise ReadFailed("empty read at %d" % len(out))
        out += data
    return out[:size]


PATTERNS = [
    ("opensc_4byte_header", pattern_opensc),
    ("myna_7byte_ber", pattern_myna),
    ("myna_card_256", pattern_myna_card),
    ("aokiapp_extended_le", pattern_extended),
    ("sfi", pattern_sfi),
]


def reads(card):
    out = {"files": {}, "sw": {}}
    # GET DATA on a fresh connection (MF, nothing selected): the card ID, and an absent tag (one of
    # the probes other OpenSC drivers send).
    data, sw = card.send(bytes.fromhex("00CA004500"))
    out["card_id"] = {"sw": sw, "value": data.decode("ascii", "replace")}
    out["sw"]["get_data_absent_df30"] = card.send(bytes.fromhex("00CADF3005"))[1]

    for fid in (AUTH_CERT, AUTH_CA):
        per = {}
        for name, fn in PATTERNS:
            try:
                per[name] = {"hex": fn(card, fid).hex()}
            except ReadFailed as e:
                per[name] = {"error": str(e)}
        out["files"]["%04X" % fid] = per

    sws = out["sw"]
    sws["select_jpki_ap"] = card.select_ap()
    sws["select_missing_ef_0099"] = card.select_ef(0x0099)
    sws["select_piv_short_p2_00"] = card.select_ap(PIV_AID_SHORT, 0x00)
    sws["select_piv_short_p2_0c"] = card.select_ap(PIV_AID_SHORT, 0x0C)
    # OpenSC's PIV driver: the full AID with P2 00 and Le 00.
    sws["select_piv_full_le"] = card.send(
        bytes([0x00, 0xA4, 0x04, 0x00, len(PIV_AID_FULL)]) + PIV_AID_FULL + b"\x00"
    )[1]

    card.select_ap()
    card.select_ef(AUTH_CERT)
    # P1 in SFI form (bit 8) with bits 7-6 set: neither an SFI nor an offset.
    sws["read_p1_e0"] = card.send(bytes.fromhex("00B0E00000"))[1]
    # Past the end of the file (offset 0x7F00).
    sws["read_past_end"] = card.send(bytes.fromhex("00B07F0001"))[1]

    card.select_ap()
    sws["select_sign_cert_0001"] = card.select_ef(SIGN_CERT)
    data, sw = card.read(0, 4)
    sws["read_sign_cert_no_password"] = sw
    out["sign_cert_no_password_bytes"] = len(data)
    data, sw = card.send(bytes([0x00, 0xB0, 0x80 | SIGN_CERT, 0x00, 0x00]))
    sws["read_sign_cert_sfi_no_password"] = sw
    out["sign_cert_sfi_no_password_bytes"] = len(data)

    sws["select_auth_key_0017"] = card.select_ef(AUTH_KEY)
    data, sw = card.read(0, 256)
    sws["read_auth_key_0017"] = sw
    out["auth_key_bytes"] = len(data)

    sws["select_auth_pin_0018"] = card.select_ef(AUTH_PIN)
    sws["empty_verify_0018"] = card.send(bytes.fromhex("00200080"))[1]
    return out


def verify(card, pin):
    if pin:
        command = bytes([0x00, 0x20, 0x00, 0x80, len(pin)]) + pin
    else:
        command = bytes.fromhex("00200080")  # empty VERIFY: the counter, no attempt spent
    return {
        "select_ap": card.select_ap(),
        "select_ef": card.select_ef(AUTH_PIN),
        "verify": card.send(command)[1],
    }


def main(argv):
    if len(argv) == 3 and argv[1] == "reads":
        mode = reads
    elif len(argv) == 4 and argv[1] == "verify":
        pin = bytes.fromhex(argv[3])

        def mode(card):
            return verify(card, pin)

    else:
        print(__doc__, file=sys.stderr)
        return 2
    card = Card(argv[2])
    try:
        result = mode(card)
    finally:
        card.close()
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
