"""Independent DPoP client for the Authority interop test (jwcrypto, stdlib HTTP only).

Usage: dpop_client.py BASE_URL CLIENT_ID CLIENT_SECRET

For an ES256 (P-256) and an EdDSA (Ed25519) key made by jwcrypto: builds the DPoP proof for the
token endpoint, obtains a token, verifies the token's signature against the appliance's /jwks
with jwcrypto, checks cnf.jkt against jwcrypto's RFC 7638 thumbprint, then calls /api/audit with
a proof carrying ath. Prints one JSON object per key on stdout.
"""
import base64
import hashlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from jwcrypto import jwk, jws, jwt
from jwcrypto.common import json_encode

base, client_id, secret = sys.argv[1:4]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(method, url, headers, body=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def proof(key, alg, htm, htu, ath=None):
    claims = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": int(time.time())}
    if ath is not None:
        claims["ath"] = ath
    public = json.loads(key.export_public())
    signed = jws.JWS(json_encode(claims).encode())
    signed.add_signature(
        key, alg=alg, protected=json_encode({"typ": "dpop+jwt", "alg": alg, "jwk": public})
    )
    return signed.serialize(compact=True)


status, body = call("GET", base + "/jwks", {})
assert status == 200, body
appliance_keys = jwk.JWKSet.from_json(body)

for kty, crv, alg in (("EC", "P-256", "ES256"), ("OKP", "Ed25519", "EdDSA")):
    key = jwk.JWK.generate(kty=kty, crv=crv)
    token_url = base + "/oauth/token"
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    ).encode()
    status, body = call(
        "POST",
        token_url,
        {"DPoP": proof(key, alg, "POST", token_url),
         "Content-Type": "application/x-www-form-urlencoded"},
        form,
    )
    result = {"alg": alg, "token_status": status}
    if status == 200:
        token = json.loads(body)
        access = token["access_token"]
        result["token_type"] = token["token_type"]
        verified = jwt.JWT(jwt=access, key=appliance_keys, algs=["ES256"])
        claims = json.loads(verified.claims)
        result["jkt_matches"] = claims["cnf"]["jkt"] == key.thumbprint()
        ath = base64.urlsafe_b64encode(hashlib.sha256(access.encode()).digest()).rstrip(b"=")
        api_url = base + "/api/audit"
        api_status, api_body = call(
            "GET",
            api_url + "?limit=1",
            {"Authorization": "DPoP " + access,
             "DPoP": proof(key, alg, "GET", api_url, ath.decode())},
        )
        result["api_status"] = api_status
    else:
        result["error"] = body
    print(json.dumps(result))
