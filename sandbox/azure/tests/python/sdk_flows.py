"""Drive local Azure with the official Azure SDK for Python.

Run by sandbox/azure/tests/python_sdk.rs, which starts the sandbox and passes everything in
environment variables (see `env` below). Host names (login.microsoftonline.com,
management.azure.com, <vault>.vault.azure.net) are resolved to the sandbox by patching
socket.getaddrinfo, port included, so seed 000's unported Key Vault URIs work unchanged and
challenge-resource verification stays on. ARM is also reached directly on https://127.0.0.1:PORT.
Every step prints `PASS <step>`; any failure raises, and the exit code is non-zero.
"""

import base64
import json
import os
import socket
import sys

env = os.environ
HOSTS = json.loads(env["SANDBOX_HOSTS"])  # {"host": port}
_real_getaddrinfo = socket.getaddrinfo


def _sandbox_getaddrinfo(host, port, *args, **kwargs):
    if isinstance(host, str) and host.lower() in HOSTS:
        return _real_getaddrinfo("127.0.0.1", HOSTS[host.lower()], *args, **kwargs)
    return _real_getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = _sandbox_getaddrinfo

from azure.core import MatchConditions  # noqa: E402
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError  # noqa: E402
from azure.identity import ClientAssertionCredential, WorkloadIdentityCredential  # noqa: E402
from azure.keyvault.certificates import CertificateClient, CertificateContentType, CertificatePolicy  # noqa: E402
from azure.keyvault.secrets import SecretClient  # noqa: E402
from azure.mgmt.dns import DnsManagementClient  # noqa: E402
from azure.mgmt.dns.models import ARecord, RecordSet, TxtRecord  # noqa: E402
from azure.mgmt.privatedns import PrivateDnsManagementClient  # noqa: E402
from azure.mgmt.privatedns import models as pmodels  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402

TENANT = env["AZURE_TENANT_ID"]
CLIENT = env["AZURE_CLIENT_ID"]
SUB = env["SANDBOX_SUBSCRIPTION"]
RG = env["SANDBOX_RESOURCE_GROUP"]
ZONE = env["SANDBOX_ZONE"]
PRIVATE_ZONE = env["SANDBOX_PRIVATE_ZONE"]
ARM = env["SANDBOX_ARM"]
VAULT_URL = env["SANDBOX_VAULT_URL"]  # https://kv-demo.vault.azure.net (no port)
LOCAL_VAULT_URL = env["SANDBOX_LOCAL_VAULT_URL"]  # https://127.0.0.1:PORT
CERT = env["SANDBOX_CERTIFICATE"]
SCOPE = ["https://management.azure.com/.default"]


def ok(step):
    print(f"PASS {step}", flush=True)


def expect_error(fn, *types, status=None):
    try:
        fn()
    except types as e:
        if status is not None:
            assert getattr(e, "status_code", None) == status, f"expected {status}, got {getattr(e, 'status_code', None)}: {e}"
        return e
    raise AssertionError(f"expected {types}")


# The authority is the real public one (login.microsoftonline.com), resolved to the sandbox.
cred = WorkloadIdentityCredential(tenant_id=TENANT, client_id=CLIENT, token_file_path=env["AZURE_FEDERATED_TOKEN_FILE"])
token = cred.get_token(*SCOPE)
assert token.token and token.expires_on > 0
ok("workload identity token")

# The authority host addressed directly as https://127.0.0.1:PORT works too.
direct = ClientAssertionCredential(TENANT, CLIENT, lambda: open(env["AZURE_FEDERATED_TOKEN_FILE"]).read(), authority=env["SANDBOX_AUTHORITY"])
assert direct.get_token("https://vault.azure.net/.default").token
ok("client assertion credential with the authority on 127.0.0.1")

dns = DnsManagementClient(cred, SUB, base_url=ARM, credential_scopes=SCOPE)
zone = dns.zones.get(RG, ZONE)
assert zone.name == ZONE and len(zone.name_servers) == 4, zone
ok("public zone get")

created = dns.record_sets.create_or_update(RG, ZONE, "www", "A", RecordSet(ttl=300, metadata={"owner": "routewarden"}, a_records=[ARecord(ipv4_address="10.0.0.1")]), if_none_match="*")
assert created.a_records[0].ipv4_address == "10.0.0.1" and created.ttl == 300 and created.etag
ok("public create with If-None-Match *")

e = expect_error(lambda: dns.record_sets.create_or_update(RG, ZONE, "www", "A", RecordSet(ttl=300, a_records=[ARecord(ipv4_address="10.0.0.9")]), if_none_match="*"), HttpResponseError, status=412)
ok("public create conflict is 412")

updated = dns.record_sets.create_or_update(RG, ZONE, "www", "A", RecordSet(ttl=60, a_records=[ARecord(ipv4_address="10.0.0.2")]), if_match=created.etag)
assert updated.ttl == 60 and updated.etag != created.etag
expect_error(lambda: dns.record_sets.create_or_update(RG, ZONE, "www", "A", RecordSet(ttl=60, a_records=[ARecord(ipv4_address="10.0.0.3")]), if_match=created.etag), HttpResponseError, status=412)
ok("public conditional update and stale If-Match 412")

for i in range(3):
    dns.record_sets.create_or_update(RG, ZONE, f"page{i}", "TXT", RecordSet(ttl=300, txt_records=[TxtRecord(value=[f"v{i}"])]))
pages = list(dns.record_sets.list_by_type(RG, ZONE, "TXT", top=1).by_page())
assert len(pages) == 3, len(pages)
names = sorted(r.name for r in dns.record_sets.list_by_type(RG, ZONE, "TXT", top=2))
assert names == ["page0", "page1", "page2"], names
every = list(dns.record_sets.list_all_by_dns_zone(RG, ZONE))
assert {r.type for r in every} >= {"Microsoft.Network/dnszones/SOA", "Microsoft.Network/dnszones/NS", "Microsoft.Network/dnszones/A"}, every
ok("public list by type with $top paging and list all")

got = dns.record_sets.get(RG, ZONE, "www", "A")
dns.record_sets.delete(RG, ZONE, "www", "A", if_match=got.etag)
expect_error(lambda: dns.record_sets.get(RG, ZONE, "www", "A"), ResourceNotFoundError, HttpResponseError)
ok("public conditional delete")

private = PrivateDnsManagementClient(cred, SUB, base_url=ARM, credential_scopes=SCOPE)
pz = private.private_zones.get(RG, PRIVATE_ZONE)
assert pz.name == PRIVATE_ZONE
body = pmodels.RecordSet(properties=pmodels.RecordSetProperties(ttl=300, a_records=[pmodels.ARecord(ipv4_address="10.1.0.4")]))
p1 = private.record_sets.create_or_update(RG, PRIVATE_ZONE, "A", "db", body, match_condition=MatchConditions.IfMissing)
assert p1.properties.a_records[0].ipv4_address == "10.1.0.4" and p1.properties.is_auto_registered is False and p1.properties.fqdn == f"db.{PRIVATE_ZONE}.", p1
expect_error(lambda: private.record_sets.create_or_update(RG, PRIVATE_ZONE, "A", "db", body, match_condition=MatchConditions.IfMissing), ResourceExistsError, HttpResponseError)
p2 = private.record_sets.create_or_update(RG, PRIVATE_ZONE, "A", "db", body, etag=p1.etag, match_condition=MatchConditions.IfNotModified)
expect_error(lambda: private.record_sets.create_or_update(RG, PRIVATE_ZONE, "A", "db", body, etag=p1.etag, match_condition=MatchConditions.IfNotModified), ResourceModifiedError, HttpResponseError)
listed = [r.name for r in private.record_sets.list_by_type(RG, PRIVATE_ZONE, "A")]
assert listed == ["db"], listed
private.record_sets.delete(RG, PRIVATE_ZONE, "A", "db", etag=p2.etag, match_condition=MatchConditions.IfNotModified)
ok("private zone create, conditional update, list, delete")

# Key Vault through the real vault host name: the SDK's challenge verification stays on.
secrets = SecretClient(VAULT_URL, cred)
secret = secrets.get_secret(CERT)
assert secret.properties.content_type == "application/x-pkcs12" and secret.properties.managed, secret.properties
key, leaf, extra = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
assert key is not None and leaf is not None
san = [n.value for n in leaf.extensions.get_extension_for_oid(__import__("cryptography").x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value]
assert f"*.{ZONE}" in san, san
ok("certificate backing secret is PKCS#12 with an empty password")

certs = CertificateClient(VAULT_URL, cred)
cert = certs.get_certificate(CERT)
assert cert.cer and cert.policy.content_type == CertificateContentType.pkcs12 and cert.properties.x509_thumbprint, cert
assert cert.id.startswith(f"{VAULT_URL}/certificates/{CERT}/")
versions = list(certs.list_properties_of_certificate_versions(CERT))
assert len(versions) >= 1
ok("certificate get and versions")

policy = CertificatePolicy(issuer_name="Self", subject="CN=py.example.com", san_dns_names=["py.example.com"], content_type=CertificateContentType.pem, key_type="EC", key_curve_name="P-256", validity_in_months=6)
made = certs.begin_create_certificate("py-cert", policy).result()
assert made.policy.content_type == CertificateContentType.pem, made.policy
pem = secrets.get_secret("py-cert").value
assert "BEGIN PRIVATE KEY" in pem and "BEGIN CERTIFICATE" in pem
ok("certificate create from a policy (EC, PEM)")

imported = certs.import_certificate("py-import", pem.encode(), policy=CertificatePolicy(issuer_name="Unknown", content_type=CertificateContentType.pem))
assert imported.cer == made.cer
ok("certificate import (PEM)")

from_pfx = certs.import_certificate("py-pfx", base64.b64decode(secret.value))
assert from_pfx.cer == cert.cer and from_pfx.policy.content_type == CertificateContentType.pkcs12
ok("certificate import (PFX, empty password)")

s1 = secrets.set_secret("py-secret", "one", content_type="text/plain")
secrets.set_secret("py-secret", "two")
assert secrets.get_secret("py-secret").value == "two"
assert secrets.get_secret("py-secret", s1.properties.version).value == "one"
assert len(list(secrets.list_properties_of_secret_versions("py-secret"))) == 2
expect_error(lambda: secrets.get_secret("does-not-exist"), ResourceNotFoundError)
ok("secrets set, get latest and version, list versions, 404")

# The same vault on https://127.0.0.1:PORT, which needs challenge verification off.
local = SecretClient(LOCAL_VAULT_URL, cred, verify_challenge_resource=False)
assert local.get_secret(CERT).value == secret.value
ok("vault by 127.0.0.1 with verify_challenge_resource=False")

print("ALL PASSED", flush=True)
sys.exit(0)
