//! The Istio plug-in CA walkthrough (seed 004) for the sandbox: CA material made the way the
//! AKS article's offline steps make it (a root, an intermediate it signs, the intermediate's key,
//! and the chain intermediate → root), the four Key Vault secrets, and the cluster side — the
//! `aks-istio-system` namespace, an istiod Deployment, the reader ServiceAccount and the
//! `IstioPluginCA`. Tests use the same pieces to rotate intermediates and roots.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use routewarden_sandbox_azure::admin::{Admin, AdminError};

/// The namespace the AKS add-on uses.
pub const NAMESPACE: &str = "aks-istio-system";
/// The ServiceAccount whose workload identity reads the CA secrets (seed 000's identity).
pub const SERVICE_ACCOUNT: &str = "istio-ca-reader";
/// The istiod Deployment the demo creates, as the add-on names one revision's.
pub const ISTIOD: &str = "istiod-asm-1-24";
/// The IstioPluginCA the demo applies.
pub const NAME: &str = "mesh-ca";

/// A CA certificate with its key.
pub struct Authority {
    pub cert_pem: String,
    key: KeyPair,
    params: CertificateParams,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

fn ca_params(common_name: &str, organization: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.distinguished_name.push(DnType::OrganizationName, organization);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    Ok(params)
}

impl Authority {
    /// A self-signed root, e.g. `Root A`.
    pub fn root(common_name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let params = ca_params(common_name, "Istio")?;
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Authority { cert_pem, key, params })
    }

    /// An intermediate CA this one signs, e.g. `Intermediate CA - A1`; `expired` back-dates it
    /// to 2020.
    pub fn intermediate(&self, common_name: &str, expired: bool) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = ca_params(common_name, "Istio")?;
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert_pem = params.signed_by(&key, &issuer)?.pem();
        Ok(Authority { cert_pem, key, params })
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

/// The four secrets' values, in the order root-cert, ca-cert, ca-key, cert-chain.
#[derive(Clone)]
pub struct CaSet {
    pub root_cert: String,
    pub ca_cert: String,
    pub ca_key: String,
    pub cert_chain: String,
}

impl std::fmt::Debug for CaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaSet").finish_non_exhaustive()
    }
}

impl CaSet {
    /// `ca` (issued by `issuer`) with `roots` as the trust bundle; cert-chain is ca-cert then the
    /// issuing root, as the article's files are.
    pub fn new(roots: &[&Authority], ca: &Authority, issuer: &Authority) -> Self {
        CaSet {
            root_cert: roots.iter().map(|r| r.cert_pem.as_str()).collect(),
            ca_cert: ca.cert_pem.clone(),
            ca_key: ca.key_pem(),
            cert_chain: format!("{}{}", ca.cert_pem, issuer.cert_pem),
        }
    }

    /// (Key Vault secret name, value) in the order the article sets them.
    pub fn secrets(&self) -> [(&'static str, &str); 4] {
        [
            ("root-cert", self.root_cert.as_str()),
            ("ca-cert", self.ca_cert.as_str()),
            ("ca-key", self.ca_key.as_str()),
            ("cert-chain", self.cert_chain.as_str()),
        ]
    }
}

/// `az keyvault secret set` for each of the four (in order); returns the versions.
pub fn set_secrets(admin: &Admin, vault: &str, set: &CaSet) -> Result<Vec<String>, AdminError> {
    set.secrets().iter().map(|(name, value)| admin.set_secret(vault, name, value)).collect()
}

/// Federates seed 000's identity (Key Vault Secrets User on its vault) with the reader
/// ServiceAccount, as `az identity federated-credential create` would.
pub fn federate(admin: &Admin) -> Result<(), AdminError> {
    use routewarden_sandbox_azure::scenario::seed000;
    let subject = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    admin.add_federated_credential(seed000::IDENTITY, "istio-ca-reader", None, &subject, None)
}

/// The target namespace, the reader ServiceAccount (annotated with `client_id`) and an istiod
/// Deployment named `istiod` labelled `app=istiod`.
pub fn cluster_yaml(client_id: &str, istiod: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {SERVICE_ACCOUNT}\n  namespace: {NAMESPACE}\n  annotations:\n    azure.workload.identity/client-id: \"{client_id}\"\n---\n{}",
        istiod_yaml(istiod)
    )
}

/// An istiod Deployment (label `app=istiod`) mounting `cacerts` as the add-on's does.
pub fn istiod_yaml(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n  labels:\n    app: istiod\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: istiod\n      istio.io/rev: {name}\n  template:\n    metadata:\n      labels:\n        app: istiod\n        istio.io/rev: {name}\n    spec:\n      containers:\n      - name: discovery\n        image: mcr.microsoft.com/oss/istio/pilot:1.24.3\n        volumeMounts:\n        - name: cacerts\n          mountPath: /etc/cacerts\n          readOnly: true\n      volumes:\n      - name: cacerts\n        secret:\n          secretName: cacerts\n          optional: true\n"
    )
}

/// The IstioPluginCA for `vault` (defaults otherwise), with `extra` spec lines (indented two
/// spaces, e.g. `  pollInterval: 1s\n`).
pub fn plugin_ca_yaml(name: &str, vault_url: &str, extra: &str) -> String {
    format!(
        "apiVersion: routewarden.io/v1alpha1\nkind: IstioPluginCA\nmetadata:\n  name: {name}\nspec:\n  keyVaultUri: {vault_url}\n  serviceAccount: {SERVICE_ACCOUNT}\n{extra}"
    )
}

/// `routewarden-sandbox demo --istio-ca`: generates Root A and Intermediate CA - A1, sets the four
/// secrets in local Key Vault, applies the namespace, an istiod Deployment, the reader
/// ServiceAccount (federated with seed 000's identity) and the IstioPluginCA, waits until
/// routewarden reports it Ready, and shows `cacerts` and the status through `print`.
pub async fn run(
    client: &kube::Client,
    azure: &Admin,
    timeout: std::time::Duration,
    mut print: impl FnMut(String),
) -> anyhow::Result<()> {
    use routewarden::crd::istio::IstioPluginCa;
    use routewarden_sandbox_azure::scenario::seed000;
    print("Istio plug-in CA (seed 004): generating Root A and Intermediate CA - A1 offline…".into());
    let root = Authority::root("Root A")?;
    let intermediate = root.intermediate("Intermediate CA - A1", false)?;
    let set = CaSet::new(&[&root], &intermediate, &root);
    let versions = set_secrets(azure, seed000::VAULT, &set)?;
    for ((name, _), version) in set.secrets().iter().zip(&versions) {
        print(format!("  az keyvault secret set --vault-name {} --name {name}   → version {version}", seed000::VAULT));
    }
    federate(azure)?;
    let vault = format!("https://{}.vault.azure.net", seed000::VAULT);
    let yaml = format!("{}---\n{}", cluster_yaml(seed000::CLIENT_ID, ISTIOD), plugin_ca_yaml(NAME, &vault, ""));
    let objects = super::yaml_objects(&yaml)?;
    for applied in super::apply_objects(client, &objects, super::FIELD_MANAGER).await? {
        print(format!("  {applied}"));
    }
    print(format!("Waiting up to {}s for routewarden to write {NAMESPACE}/cacerts…", timeout.as_secs()));
    let api = kube::Api::<IstioPluginCa>::all(client.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    let status = loop {
        let ready = api
            .get_opt(NAME)
            .await?
            .and_then(|ca| ca.status)
            .filter(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if let Some(status) = ready {
            break status;
        }
        if tokio::time::Instant::now() > deadline {
            let now = api.get_opt(NAME).await?.and_then(|ca| ca.status).map(|s| s.conditions).unwrap_or_default();
            anyhow::bail!("IstioPluginCA {NAME} is not Ready after {timeout:?}: {now:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let secret =
        kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), NAMESPACE).get("cacerts").await?;
    print(String::new());
    print(format!("$ kubectl get secret cacerts -n {NAMESPACE}"));
    print(format!(
        "NAME      TYPE     DATA\ncacerts   {}   {}",
        secret.type_.clone().unwrap_or_default(),
        secret.data.as_ref().map_or(0, |d| d.len())
    ));
    for (key, value) in secret.data.iter().flatten() {
        let subjects: Vec<String> = x509_parser::pem::Pem::iter_from_buffer(&value.0)
            .filter_map(|p| p.ok())
            .filter_map(|p| p.parse_x509().ok().map(|c| c.subject().to_string()))
            .collect();
        let what = if subjects.is_empty() { "private key (not shown)".to_owned() } else { subjects.join(" → ") };
        print(format!("  {key:<15} {what}"));
    }
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    print(String::new());
    print(format!("$ kubectl get ipca {NAME}"));
    print(format!(
        "  Ready={} reason={} observedGeneration={}",
        ready.map_or("", |c| c.status.as_str()),
        ready.map_or("", |c| c.reason.as_str()),
        ready.and_then(|c| c.observed_generation).unwrap_or_default()
    ));
    print(format!("  rootFingerprints: {}", status.root_fingerprints.join(", ")));
    print(format!("  appliedVersions:  {:?}", status.applied_versions));
    if let Some(t) = &status.ca_not_after {
        print(format!("  caNotAfter:       {}", t.0));
    }
    Ok(())
}
