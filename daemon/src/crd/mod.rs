//! routewarden's CustomResourceDefinitions: Rust types in, CRD YAML out, and the checked
//! conversion from a watched object to the planner's input.
//!
//! - [`v1alpha1`] holds the `ClusterExternalDNS` / `ExternalDNS` types. Their `kube` derives
//!   produce the CRDs; [`crds`] post-processes the little the derive cannot say (see
//!   [`finish`]) and [`render`] turns each into the YAML checked in under `deploy/crds/`
//!   (`routewarden crd --write deploy/crds`; a test fails when the two drift).
//! - [`convert`] re-checks everything the schema checks (an API server may lack CEL, or carry
//!   the anchor operator's copy of the CRD) and turns a valid object into a
//!   [`routewarden_planner::dns::DnsResource`] plus what the apply side needs (identity,
//!   deletion policy, hold-down). Errors name the object and the field path and carry a bounded
//!   reason for conditions and metrics.
//! - [`conditions`] is the one list of condition types and reasons.
//! - [`istio`] holds the cluster-scoped `IstioPluginCA` (`routewarden.io/v1alpha1`) and its spec
//!   check, for the Istio plug-in CA controller ([`crate::ca`]).

pub mod conditions;
pub mod convert;
pub mod istio;
pub mod v1alpha1;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use kube::CustomResourceExt;
use std::path::{Path, PathBuf};

/// The first line of every generated file.
pub const GENERATED_HEADER: &str =
    "# Generated from daemon/src/crd by `routewarden crd --write deploy/crds`. Do not edit by hand.\n";

/// Where the generated CRDs are checked in, relative to the repository root.
pub const CHECKED_IN_DIR: &str = "deploy/crds";

/// Every CRD routewarden serves, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        finish(v1alpha1::ClusterExternalDns::crd()),
        finish(v1alpha1::ExternalDns::crd()),
        finish(istio::IstioPluginCa::crd()),
    ]
}

/// Adjusts a derived CRD where the derive cannot express what we want.
///
/// schemars marks every `Option` field `nullable: true`. In the spec that would make
/// `tenantId: null` a legal value that then reaches the CEL rules (`self.serviceAccount != ''`
/// fails on null with "no such overload"). Without `nullable`, the API server drops nulls before
/// defaulting and validation, which is what the anchor's CRD does. Status is ours to write, so
/// it is left alone.
///
/// schemars also titles the root schema with the Rust type's name, which means nothing to a
/// user reading `kubectl explain`.
fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(root) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) else { continue };
        root.title = None;
        if let Some(spec) = root.properties.as_mut().and_then(|props| props.get_mut("spec")) {
            strip_nullable(spec);
        }
    }
    crd
}

fn strip_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_nullable(child);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        strip_nullable(items);
    }
}

/// One CRD as the YAML file that is checked in.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, serde_yaml_ng::Error> {
    Ok(format!("{GENERATED_HEADER}{}", serde_yaml_ng::to_string(crd)?))
}

/// All CRDs as one multi-document YAML stream, for `kubectl apply -f -`.
pub fn render_all() -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&render(&crd)?);
    }
    Ok(out)
}

/// The file name a CRD is checked in under: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or(&crd.spec.names.plural))
}

/// Writes one file per CRD into `dir` (created if absent); returns the paths written.
pub fn write_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let mut written = Vec::new();
    for crd in crds() {
        let path = dir.join(file_name(&crd));
        let yaml = render(&crd).context("failed to render CRD")?;
        std::fs::write(&path, yaml).with_context(|| format!("failed to write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
