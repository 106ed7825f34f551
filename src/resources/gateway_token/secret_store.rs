//! The optional `secret {}` block: where the token is kept in the cluster,
//! and the Kubernetes calls that write it, read it back for drift, and
//! remove it.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use serde::{Deserialize, Serialize};

use crate::framework::resource::Context;
use crate::framework::schema::{NestedBlock, Nesting};
use crate::framework::validator::Check;
use crate::framework::{Attribute, AttributePath, Block, Diagnostics};
use crate::kube::names::{check_data_key, check_label, check_subdomain};
use crate::kube::objects::{data_fingerprint, data_keys_owned_by_others, release_body, token_secret};
use crate::kube::{Deadline, KubeError};
use crate::resources::state::kube_clients;

/// The block's name.
pub const BLOCK: &str = "secret";
pub const DEFAULT_KEY: &str = "token";
/// Time limits for the Secret's calls (StopProvider still stops them at once).
const WRITE_LIMIT: Duration = Duration::from_secs(120);
const READ_LIMIT: Duration = Duration::from_secs(60);

/// Where the token is stored, as state holds it. No `Debug`: it holds the
/// kubeconfig.
#[derive(Clone, Serialize, Deserialize)]
pub struct SecretRef {
    pub kubeconfig: String,
    pub namespace: String,
    pub name: String,
    pub key: String,
    /// SHA-256 of what the Secret held at `key` when last read or written;
    /// null when the Secret or the key is missing.
    pub stored_fingerprint: Option<String>,
}

impl SecretRef {
    /// Same Secret object (the key may differ)?
    pub fn same_object(&self, other: &SecretRef) -> bool {
        self.namespace == other.namespace && self.name == other.name && self.kubeconfig == other.kubeconfig
    }

    fn describe(&self) -> String {
        format!("Secret {}/{} (key {:?})", self.namespace, self.name, self.key)
    }
}

/// The `secret {}` block of the schema.
pub fn block() -> NestedBlock {
    NestedBlock::new(
        BLOCK,
        Nesting::Single,
        Block::new()
            .description(
                "Keep the token in a Kubernetes Secret: written on create and on every rotation or replacement; a Secret changed or deleted out of band shows as drift, and apply writes the token in state back (never a new token).",
            )
            .attribute(
                Attribute::string("kubeconfig")
                    .required()
                    .sensitive()
                    .description(
                        "The text of a kubeconfig (e.g. `selfhost_k8s_cluster.main.kubeconfig` or `file(\"~/.kube/config\")`); its current context is used. Sensitive.",
                    ),
            )
            .attribute(
                Attribute::string("namespace")
                    .required()
                    .description("Namespace of the Secret (must exist).")
                    .validator(Check::values(
                        "Invalid namespace",
                        "must be an RFC 1123 label",
                        check_label,
                    )),
            )
            .attribute(
                Attribute::string("name")
                    .required()
                    .description("Name of the Secret; created when missing, shared when other keys exist in it.")
                    .validator(Check::values(
                        "Invalid Secret name",
                        "must be an RFC 1123 subdomain",
                        check_subdomain,
                    )),
            )
            .attribute(
                Attribute::string("key")
                    .optional()
                    .computed()
                    .default_value(DEFAULT_KEY)
                    .description("Key of the Secret's data that holds the token.")
                    .validator(Check::values("Invalid Secret key", "must be a valid Secret data key", check_data_key)),
            )
            .attribute(
                Attribute::string("stored_fingerprint")
                    .computed()
                    .description(
                        "SHA-256 (hex) of what the Secret holds at `key`, as last read; null when the Secret or key is missing. It differs from `fingerprint` when the Secret was changed out of band, and the plan then writes the token back.",
                    ),
            ),
    )
}

/// A diagnostic for a failed call, pointing at the `secret` block.
pub fn diagnose(e: &KubeError, diags: &mut Diagnostics) {
    diags.attribute_error(AttributePath::root(BLOCK), e.summary(), e.detail());
}

/// Write `token` to the Secret (server-side apply: creates the Secret or
/// takes over the key). Returns the fingerprint now stored.
pub async fn write(ctx: &Context, at: &SecretRef, token: &str) -> Result<String, KubeError> {
    let kube = kube_clients(ctx).client(&at.kubeconfig).await?;
    let dl = Deadline::new(&ctx.cancel, WRITE_LIMIT);
    let applied = kube
        .apply(&token_secret(&at.namespace, &at.name, &at.key, token), &dl)
        .await?;
    tracing::info!(secret = %at.describe(), "stored the gateway token in the Secret");
    data_fingerprint(&applied, &at.key).ok_or_else(|| KubeError::Unexpected {
        what: format!("apply of {}", at.describe()),
        message: "the Secret returned by the server lacks the key just written".to_owned(),
    })
}

/// The fingerprint of what the Secret holds at the key now; `None` when the
/// Secret (or its namespace) or the key is gone.
pub async fn observe(ctx: &Context, at: &SecretRef) -> Result<Option<String>, KubeError> {
    let kube = kube_clients(ctx).client(&at.kubeconfig).await?;
    let dl = Deadline::new(&ctx.cancel, READ_LIMIT);
    let secret = kube.get::<Secret>(&at.namespace, &at.name, &dl).await?;
    Ok(secret.and_then(|s| data_fingerprint(&s, &at.key)))
}

/// Take the token out of the cluster: delete the Secret (and wait until it
/// is gone) when only this provider keeps data in it; otherwise give up our
/// key and labels and leave the others' data in place.
pub async fn remove(ctx: &Context, at: &SecretRef) -> Result<(), KubeError> {
    let kube = kube_clients(ctx).client(&at.kubeconfig).await?;
    let dl = Deadline::new(&ctx.cancel, WRITE_LIMIT);
    let Some(secret) = kube.get::<Secret>(&at.namespace, &at.name, &dl).await? else {
        return Ok(());
    };
    let others: Vec<String> = data_keys_owned_by_others(&secret)
        .into_iter()
        .filter(|k| *k != at.key)
        .collect();
    if others.is_empty() {
        kube.delete_and_wait::<Secret>(&at.namespace, &at.name, &dl).await?;
        tracing::info!(secret = %at.describe(), "deleted the Secret");
    } else {
        let body = release_body("v1", "Secret", &at.namespace, &at.name);
        kube.apply_json::<Secret>(&at.namespace, &at.name, &body, &dl).await?;
        tracing::info!(secret = %at.describe(), kept_keys = ?others, "removed the token's key; the Secret keeps other writers' keys");
    }
    Ok(())
}
