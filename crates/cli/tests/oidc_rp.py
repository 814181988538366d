"""A relying party and a person's browser against `jpki serve`'s OpenID Connect provider.

The relying party is Authlib (OAuth2Session, private_key_jwt, PKCE S256) with joserfc validating
the ID token against the provider's JWKS. The browser is `requests` following the login pages as
a person would: the authorization page hands the challenge to the card agent (`jpki card agent`),
whose own page takes the PIN (and the signing password), and whose answer goes back to the
provider, which shows the consent page.

    oidc_rp.py jwks KEY.pem OUT.json
    oidc_rp.py login DISCOVERY CLIENT_ID KEY.pem REDIRECT SCOPE PIN PASSWORD [--refusals OTHER_KEY.pem]
    oidc_rp.py bench DISCOVERY CLIENT_ID KEY.pem REDIRECT PIN N
    oidc_rp.py portal-login PORTAL_URL PIN
    oidc_rp.py sign DISCOVERY CLIENT_ID KEY.pem REDIRECT SUB PASSWORD OTHER_CLIENT_ID OTHER_KEY.pem

`login` prints one JSON object: the ID token's claims, userinfo, and (with --refusals) what each
refused request got.
"""
import json
import sys
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet


class Forms(HTMLParser):
    """The forms of a page: action, method and fields (hidden and named inputs, buttons)."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {}, "buttons": []})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))


def forms(page):
    p = Forms()
    p.feed(page.text)
    return p.forms


def fail(why, page=None):
    detail = ""
    if page is not None:
        alert = page.text.split('role="alert"><p>', 1)[-1].split("</p>", 1)[0] if 'role="alert"' in page.text else page.text[:300]
        detail = f" (HTTP {page.status_code}: {alert})"
    raise SystemExit(f"oidc_rp: {why}{detail}")


def ec_key(path):
    with open(path, "rb") as f:
        return ECKey.import_key(f.read())


def origin(url):
    """What a browser sends as `Origin` for a form on the page at `url` (Referrer-Policy: origin)."""
    u = urlparse(url)
    return f"{u.scheme}://{u.netloc}"


def browser_login(url, pin, password):
    """Follows the login pages from the authorization URL to the redirect: returns its Location."""
    b = requests.Session()
    page = b.get(url, allow_redirects=False)
    if page.status_code != 200:
        fail("the authorization page", page)
    card = forms(page)[0]
    # The card agent: its PIN page, then the answer it posts back to the provider.
    pin_page = b.post(card["action"], data=card["fields"], headers={"Origin": origin(url)})
    if pin_page.status_code != 200:
        fail("the card agent's PIN page", pin_page)
    pin_form = forms(pin_page)[0]
    fields = dict(pin_form["fields"], pin=pin)
    if "password" in pin_form["fields"]:
        fields["password"] = password
    answer = b.post(urljoin(card["action"], pin_form["action"]), data=fields)
    if answer.status_code != 200:
        fail("the card agent's answer", answer)
    back = forms(answer)[0]
    consent = b.post(back["action"], data=back["fields"])
    if consent.status_code != 200:
        fail("the consent page", consent)
    decide = forms(consent)[0]
    shown = consent.text
    done = b.post(urljoin(back["action"], decide["action"]), data=dict(decide["fields"], decision="approve"), allow_redirects=False)
    if done.status_code != 303:
        fail("the consent decision", done)
    return done.headers["Location"], shown


def session(meta, client_id, key, redirect, scope):
    s = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt", scope=scope,
                      redirect_uri=redirect, code_challenge_method="S256")
    s.register_client_auth_method(PrivateKeyJWT(meta["token_endpoint"], alg="ES256"))
    return s


def authorization(meta, s):
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = s.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    return url, state, verifier, nonce


def token_error(call):
    try:
        call()
    except Exception as e:  # authlib raises OAuthError (error code in .error)
        return getattr(e, "error", type(e).__name__)
    return None


def login(args):
    discovery, client_id, key_file, redirect, scope, pin, password = args[:7]
    other_key = args[8] if len(args) > 8 and args[7] == "--refusals" else None
    meta = requests.get(discovery).json()
    key = ec_key(key_file)
    s = session(meta, client_id, key, redirect, scope)
    url, state, verifier, nonce = authorization(meta, s)
    callback, consent_page = browser_login(url, pin, password)
    q = parse_qs(urlparse(callback).query)
    if q.get("iss") != [meta["issuer"]]:
        fail(f"the redirect names issuer {q.get('iss')}, not {meta['issuer']}")
    token = s.fetch_token(meta["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier)
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"]).json())
    tok = jwt.decode(token["id_token"], keys, algorithms=meta["id_token_signing_alg_values_supported"])
    claims = CodeIDToken(tok.claims, tok.header,
                         {"iss": {"essential": True, "value": meta["issuer"]}, "aud": {"essential": True, "value": client_id}},
                         {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]})
    claims.validate(leeway=120)
    userinfo = requests.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    out = {"id_token": dict(tok.claims), "alg": tok.header["alg"], "userinfo": userinfo, "consent_page": consent_page}
    if other_key:
        refusals = {}
        # A reused code: refused, and (RFC 6749 §4.1.2) the tokens issued from it are revoked.
        refusals["reused_code"] = token_error(lambda: s.fetch_token(
            meta["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier))
        refusals["revoked_after_reuse"] = requests.get(
            meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}).status_code
        # A wrong code_verifier.
        url, state, verifier, nonce = authorization(meta, s)
        callback, _ = browser_login(url, pin, password)
        refusals["wrong_verifier"] = token_error(lambda: s.fetch_token(
            meta["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier + "x"))
        # A bad client assertion: signed with a key the client never registered.
        url, state, verifier, nonce = authorization(meta, s)
        callback, _ = browser_login(url, pin, password)
        impostor = session(meta, client_id, ec_key(other_key), redirect, scope)
        refusals["bad_assertion"] = token_error(lambda: impostor.fetch_token(
            meta["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier))
        # The first login id (in the authorization page, seen by whoever started the login) cannot
        # decide the consent: only the consent page's own id does.
        url, _, _, _ = authorization(meta, s)
        b = requests.Session()
        page = b.get(url)
        card = forms(page)[0]
        first_tx = card["fields"]["tx"]
        pin_page = b.post(card["action"], data=card["fields"], headers={"Origin": origin(url)})
        pin_form = forms(pin_page)[0]
        fields = dict(pin_form["fields"], pin=pin)
        if "password" in pin_form["fields"]:
            fields["password"] = password
        answer = b.post(urljoin(card["action"], pin_form["action"]), data=fields)
        back = forms(answer)[0]
        consent = b.post(back["action"], data=back["fields"])
        assert consent.status_code == 200, consent.text
        hijack = requests.post(urljoin(url, "/oidc/login/consent"), data={"tx": first_tx, "decision": "approve"},
                               allow_redirects=False)
        refusals["first_tx_decides"] = hijack.status_code
        # A card answer that fails the checks: a page that says why and links back with access_denied.
        url, state, _, _ = authorization(meta, s)
        card = forms(requests.get(url))[0]
        bad = requests.post(card["fields"]["return_to"], data={"tx": card["fields"]["tx"], "auth_cert": "AAAA", "auth_sig": "AAAA"})
        link = bad.text.split('<a href="', 1)[-1].split('"', 1)[0].replace("&amp;", "&")
        q = parse_qs(urlparse(link).query)
        refusals["bad_card_answer"] = [bad.status_code, q.get("error"), q.get("state") == [state]]
        # Missing PKCE: the provider sends the browser back with invalid_request.
        plain = OAuth2Session(client_id, key, scope=scope, redirect_uri=redirect)
        url, _ = plain.create_authorization_url(meta["authorization_endpoint"], nonce=generate_token(20))
        r = requests.get(url, allow_redirects=False)
        refusals["missing_pkce"] = [r.status_code, parse_qs(urlparse(r.headers.get("Location", "")).query).get("error")]
        # A redirect URI that was not registered: a page, never a redirect.
        url, _, _, _ = authorization(meta, session(meta, client_id, key, redirect + "/elsewhere", scope))
        r = requests.get(url, allow_redirects=False)
        refusals["wrong_redirect_uri"] = [r.status_code, "Location" in r.headers]
        out["refusals"] = refusals
    print(json.dumps(out, ensure_ascii=False))


def bench(args):
    """N complete logins (authorize, the card signs, consent, code, token): latency percentiles."""
    import time
    discovery, client_id, key_file, redirect, pin, n = args[:6]
    meta = requests.get(discovery).json()
    key = ec_key(key_file)
    times = []
    for _ in range(int(n)):
        start = time.perf_counter()
        s = session(meta, client_id, key, redirect, "openid")
        url, state, verifier, nonce = authorization(meta, s)
        callback, _ = browser_login(url, pin, None)
        token = s.fetch_token(meta["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier)
        times.append((time.perf_counter() - start) * 1000)
        assert token["id_token"]
    times.sort()
    pick = lambda q: round(times[min(len(times) - 1, int(q * len(times)))], 1)
    print(json.dumps({"logins": len(times), "p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99),
                      "mean_ms": round(sum(times) / len(times), 1)}))


def client_assertion(meta, client_id, key):
    """A private_key_jwt assertion (RFC 7523) for the provider's client endpoints."""
    import time
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": meta["token_endpoint"], "iat": now, "exp": now + 300,
              "jti": generate_token(24)}
    return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": jwt.encode({"alg": "ES256", "kid": key.thumbprint()}, claims, key)}


def sign(args):
    """A sign transaction: open it, approve it with the signing password through the agent, fetch
    the signature and verify it over the document with `cryptography`; and the refusals."""
    import base64
    import hashlib
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    discovery, client_id, key_file, redirect, sub, password, other_id, other_key_file = args[:8]
    meta = requests.get(discovery).json()
    sign_endpoint = meta["issuer"] + "/sign"
    key, other_key = ec_key(key_file), ec_key(other_key_file)
    document = "住宅ローン契約書 第1条 …".encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(document).digest()).rstrip(b"=").decode()

    def open_tx(expected_sub):
        fields = dict(client_assertion(meta, client_id, key), digest=digest, description="住宅ローン契約書",
                      redirect_uri=redirect, state="sign-state-1")
        if expected_sub:
            fields["sub"] = expected_sub
        r = requests.post(sign_endpoint, data=fields)
        if r.status_code != 201:
            fail("opening a sign transaction", r)
        return r.json()

    def approve(tx):
        b = requests.Session()
        page = b.get(tx["sign_url"])
        if page.status_code != 200:
            fail("the sign page", page)
        card = forms(page)[0]
        pw_page = b.post(card["action"], data=card["fields"], headers={"Origin": origin(tx["sign_url"])})
        if pw_page.status_code != 200:
            fail("the card agent's password page", pw_page)
        pw_form = forms(pw_page)[0]
        answer = b.post(urljoin(card["action"], pw_form["action"]), data=dict(pw_form["fields"], password=password))
        if answer.status_code != 200:
            fail("the card agent's answer", answer)
        back = forms(answer)[0]
        done = b.post(back["action"], data=back["fields"], allow_redirects=False)
        # A page with a link back to the relying party (not a redirect).
        link = done.text.split('<a href="', 1)[-1].split('"', 1)[0].replace("&amp;", "&") if "<a href=" in done.text else ""
        return done, page.text, link

    def result(tx, cid, k):
        return requests.post(sign_endpoint + "/result",
                             data=dict(client_assertion(meta, cid, k), transaction_id=tx["transaction_id"]))

    out = {}
    tx = open_tx(sub)
    out["pending"] = result(tx, client_id, key).json()["status"]
    done, page, link = approve(tx)
    out["shown_description"] = "住宅ローン契約書" in page
    out["redirect"] = [done.status_code, parse_qs(urlparse(link).query)]
    fetched = result(tx, client_id, key).json()
    out["status"] = fetched["status"]
    cert = x509.load_der_x509_certificate(base64.b64decode(fetched["certificate"]))
    cert.public_key().verify(base64.b64decode(fetched["signature"]), document, padding.PKCS1v15(), hashes.SHA256())
    out["verified"] = True
    out["signer_subject"] = cert.subject.rfc4514_string()
    # Another client cannot fetch it.
    out["other_client"] = result(tx, other_id, other_key).status_code
    # Someone other than the expected person: refused, nothing sent.
    wrong = open_tx("0" * 32)
    refused, _, _ = approve(wrong)
    out["wrong_signer"] = [refused.status_code, result(wrong, client_id, key).json()["status"]]
    # Declined on the provider's page.
    declined = open_tx(None)
    b = requests.Session()
    page = b.get(declined["sign_url"])
    cancel = forms(page)[1]
    r = b.post(urljoin(declined["sign_url"], cancel["action"]), data=cancel["fields"], allow_redirects=False)
    out["declined"] = [r.status_code, parse_qs(urlparse(r.headers.get("Location", "")).query).get("error"),
                       result(declined, client_id, key).json()["status"]]
    # A bad request: no digest.
    r = requests.post(sign_endpoint, data=dict(client_assertion(meta, client_id, key), description="x",
                                               redirect_uri=redirect, state="s"))
    out["no_digest"] = [r.status_code, r.json().get("error")]
    print(json.dumps(out, ensure_ascii=False))


def portal_login(args):
    """Follows マイナポータル's login pages: prints the final status and the page's alert, if any.
    With --elsewhere, the card's answer reaches the portal from another browser (no login cookie)."""
    portal, pin = args[:2]
    elsewhere = "--elsewhere" in args[2:]
    b = requests.Session()
    page = b.get(portal)
    card = forms(page)[0]
    pin_page = b.post(card["action"], data=card["fields"], headers={"Origin": origin(portal)})
    pin_form = forms(pin_page)[0]
    answer = b.post(urljoin(card["action"], pin_form["action"]), data=dict(pin_form["fields"], pin=pin))
    back = forms(answer)[0]
    done = (requests.Session() if elsewhere else b).post(back["action"], data=back["fields"])
    alert = done.text.split('role="alert"><p>', 1)[-1].split("</p>", 1)[0] if 'role="alert"' in done.text else ""
    print(json.dumps({"status": done.status_code, "alert": alert, "logged_in": "ログアウト" in done.text}, ensure_ascii=False))


def jwks(args):
    key = ec_key(args[0])
    public = key.as_dict(private=False)
    public.update({"kid": key.thumbprint(), "use": "sig", "alg": "ES256"})
    with open(args[1], "w") as f:
        json.dump({"keys": [public]}, f)


if __name__ == "__main__":
    {"jwks": jwks, "login": login, "bench": bench, "sign": sign, "portal-login": portal_login}[sys.argv[1]](sys.argv[2:])
