"""pyHanko's ETSI EN 319 102-1 (AdES) verdict for every case of crates/sig/tests/corpus.rs.

Usage: python ades_check.py MANIFEST.json

The manifest is a JSON list of cases, each
  {"name": str, "kind": "cms" | "pdf", "mode": "basic" | "time",
   "sig": path (.p7s DER for cms, the signed PDF for pdf), "content": path (cms only),
   "roots": [DER certificate paths], "crls": [DER CRL paths]}.

Prints one JSON object per case and line: {"name", "status", "sub", "msg"} where status is
PASSED / FAILED / INDETERMINATE (pyHanko's AdES indication) or ERROR (pyHanko raised; msg says
what). Always exits 0 when the manifest could be read: the Rust side judges the results.

Validation is offline: the CRLs are given to pyHanko as local knowledge (LocalKnowledge.known_crls)
with online fetching of revocation information and certificates switched off, revocation
information is required (REQUIRE_REVINFO), and the signer's keyUsage must carry both
digitalSignature and nonRepudiation, as for a JPKI signature certificate.
"""

import asyncio
import hashlib
import json
import sys
import traceback

from asn1crypto import cms, crl as asn1_crl
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import KeyUsageConstraints, ades
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    LocalKnowledge,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer


def spec_for(case):
    roots = [load_cert_from_pemder(p) for p in case["roots"]]
    crls = []
    for p in case["crls"]:
        with open(p, "rb") as f:
            crls.append(CRLContainer(asn1_crl.CertificateList.load(f.read())))
    return SignatureValidationSpec(
        cert_validation_policy=CertValidationPolicySpec(
            trust_manager=SimpleTrustManager.build(trust_roots=roots),
            revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
        ),
        revinfo_gathering_policy=RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
            certificate_fetching_rule=CertificateFetchingRule.NEVER_FETCH,
        ),
        local_knowledge=LocalKnowledge(known_crls=crls),
        key_usage_settings=KeyUsageConstraints(
            key_usage={"digital_signature", "non_repudiation"},
            match_all_key_usages=True,
        ),
    )


async def validate(case):
    spec = spec_for(case)
    fn = ades.ades_with_time_validation if case["mode"] == "time" else ades.ades_basic_validation
    if case["kind"] == "pdf":
        with open(case["sig"], "rb") as f:
            sigs = list(PdfFileReader(f).embedded_regular_signatures)
            if not sigs:
                raise ValueError("pyHanko found no signature in the PDF")
            sig = sigs[0]
            return await fn(sig.signed_data, spec, raw_digest=sig.compute_digest())
    with open(case["sig"], "rb") as f:
        signed_data = cms.ContentInfo.load(f.read())["content"]
    with open(case["content"], "rb") as f:
        digest = hashlib.sha256(f.read()).digest()
    return await fn(signed_data, spec, raw_digest=digest)


def one_line(s):
    return " ".join(str(s).split())[:300]


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    for case in cases:
        out = {"name": case["name"]}
        try:
            r = asyncio.run(validate(case))
            out["status"] = r.ades_subindic.status.name
            out["sub"] = r.ades_subindic.standard_name
            out["msg"] = one_line(r.failure_msg or "")
        except Exception as e:  # one broken case must not hide the others
            out["status"] = "ERROR"
            out["sub"] = type(e).__name__
            out["msg"] = one_line(f"{e} | {traceback.format_exc(limit=3)}")
        print(json.dumps(out, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
