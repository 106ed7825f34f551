//! ServiceAccount tokens for clients outside the cluster: a short-lived one
//! from the TokenRequest API, or the long-lived one the token controller
//! writes into a `kubernetes.io/service-account-token` Secret. The token
//! only ever travels as [`Sensitive`], so no log line or span can hold it.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, PostParams};

use super::client::describe;
use super::{Deadline, Kube, KubeError};
use crate::sensitive::Sensitive;

/// A token and when it stops working.
#[derive(Debug)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: Sensitive<String>,
    /// Its expiry as the API server stated it (RFC 3339), `None` for a
    /// token that does not expire.
    pub expires: Option<String>,
}

impl Kube {
    /// A token of the ServiceAccount `namespace`/`name` valid for
    /// `duration` (the API server may shorten it: the expiry it states is
    /// the one returned). Not bound to any object, so it outlives nothing
    /// but the ServiceAccount.
    ///
    /// # Errors
    /// As [`Kube::apply`].
    pub async fn request_token(
        &self,
        namespace: &str,
        name: &str,
        duration: Duration,
        dl: &Deadline,
    ) -> Result<IssuedToken, KubeError> {
        let what = format!("token request for {}", describe::<ServiceAccount>(namespace, name));
        tracing::debug!(operation = %what, seconds = duration.as_secs(), "create token");
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let params = PostParams::default();
        let issued = self
            .retrying(&what, dl, || api.create_token_request(name, &params, &request))
            .await?;
        let status = issued.status.unwrap_or_default();
        let token = status
            .token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| KubeError::Unexpected {
                what: what.clone(),
                message: "the API server returned no token".to_owned(),
            })?;
        Ok(IssuedToken {
            token: Sensitive::new(token),
            expires: status.expiration_timestamp.map(|t| t.0.to_string()),
        })
    }

    /// The token the token controller wrote into the Secret
    /// `namespace`/`name`, waiting for it (it fills a new Secret within a
    /// second or so).
    ///
    /// # Errors
    /// As [`Kube::get`]; [`KubeError::WaitTimeout`] when no token came
    /// before the deadline (e.g. the Secret names no existing
    /// ServiceAccount).
    pub async fn secret_token(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        dl: &Deadline,
    ) -> Result<Sensitive<String>, KubeError> {
        let what = format!("token of {}", describe::<Secret>(namespace, name));
        let mut pause = Duration::from_millis(200);
        loop {
            let secret = self.get::<Secret>(namespace, name, dl).await?;
            let token = secret
                .and_then(|s| s.data)
                .and_then(|mut d| d.remove(key))
                .and_then(|b| String::from_utf8(b.0).ok())
                .filter(|t| !t.is_empty());
            if let Some(t) = token {
                return Ok(Sensitive::new(t));
            }
            dl.sleep(pause, &what).await?;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}
