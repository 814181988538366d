"""pyHanko's offline AdES verdict on a B-LT (augmented) signature, from what it carries alone.

Usage: python pyhanko_lt.py ROOT.pem FILE.pdf
       python pyhanko_lt.py ROOT.pem FILE.p7s CONTENT

Validation is offline (online fetching of revocation information and certificates off:
LOCAL_ONLY, NEVER_FETCH), revocation information is required (REQUIRE_REVINFO), and the only
revocation information pyHanko gets is what the file embeds, read by pyHanko itself:

- a PDF: the Document Security Store, read with pyHanko's `DocumentSecurityStore.read_dss` and
  turned into local knowledge exactly as its PAdES-LTA validation does (`_dss_to_local_knowledge`),
  then `ades_with_time_validation` (the corpus's AdES validation with time). pyHanko's
  `ades_lta_validation` itself answers NO_POE for a B-LT file: without a document time-stamp
  (B-LTA) it has no proof of existence of the DSS contents before the validation time; its verdict
  is printed too, as "lta";
- a .p7s: the CMS `crls` field (CRLs, and OCSP responses as other revocation info
  id-ri-ocsp-response) parsed with asn1crypto, as local knowledge.

Prints one JSON object: {"status", "sub", "msg"} (plus "lta" for a PDF).
"""

import asyncio
import hashlib
import json
import sys

from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import KeyUsageConstraints, ades
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer


def spec(root, knowledge):
    return SignatureValidationSpec(
        cert_validation_policy=CertValidationPolicySpec(
            trust_manager=SimpleTrustManager.build(trust_roots=[root]),
            revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
        ),
        revinfo_gathering_policy=RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
            certificate_fetching_rule=CertificateFetchingRule.NEVER_FETCH,
        ),
        local_knowledge=knowledge,
        key_usage_settings=KeyUsageConstraints(
            key_usage={"digital_signature", "non_repudiation"},
            match_all_key_usages=True,
        ),
    )


def cms_knowledge(signed_data):
    crls, ocsps = [], []
    for choice in signed_data["crls"] or []:
        if choice.name == "crl":
            crls.append(CRLContainer(choice.chosen))
        elif choice.name == "other":
            other = choice.chosen
            if other["other_rev_info_format"].dotted == "1.3.6.1.5.5.7.16.2":
                resp = asn1_ocsp.OCSPResponse.load(other["other_rev_info"].dump())
                ocsps.extend(OCSPContainer.load_multi(resp))
    return LocalKnowledge(known_crls=crls, known_ocsps=ocsps)


def verdict(r):
    return {
        "status": r.ades_subindic.status.name,
        "sub": r.ades_subindic.standard_name,
        "msg": " ".join(str(r.failure_msg or "").split())[:300],
    }


async def validate(argv):
    root = load_cert_from_pemder(argv[1])
    if argv[2].endswith(".pdf"):
        with open(argv[2], "rb") as f:
            reader = PdfFileReader(f)
            sig = list(reader.embedded_regular_signatures)[0]
            knowledge = ades._dss_to_local_knowledge(reader)
            out = verdict(
                await ades.ades_with_time_validation(
                    sig.signed_data, spec(root, knowledge), raw_digest=sig.compute_digest()
                )
            )
            lta = await ades.ades_lta_validation(
                sig, PdfSignatureValidationSpec(spec(root, LocalKnowledge()))
            )
            out["lta"] = verdict(lta)
            return out
    with open(argv[2], "rb") as f:
        signed_data = cms.ContentInfo.load(f.read())["content"]
    with open(argv[3], "rb") as f:
        digest = hashlib.sha256(f.read()).digest()
    return verdict(
        await ades.ades_with_time_validation(
            signed_data, spec(root, cms_knowledge(signed_data)), raw_digest=digest
        )
    )


def main():
    print(json.dumps(asyncio.run(validate(sys.argv))))


if __name__ == "__main__":
    main()
