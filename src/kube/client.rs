//! The client side: one `kube::Client` per distinct kubeconfig per provider
//! process, and the operations resources need (server-side apply, get,
//! delete-and-wait), each retried on transient failures with backoff until
//! its [`Deadline`], and stopped promptly by cancellation.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::FIELD_MANAGER;
use super::error::{Attempt, KubeError, classify};

/// First pause after a transient failure; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a 403 may be taken for an API server still starting (see
/// [`Kube::retrying`]), counted from the first one of an operation.
const STARTING_GRACE: Duration = Duration::from_secs(90);
/// How long one `/readyz` question may take.
const READYZ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one TCP connect to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an answer may take once a request is written. The API server
/// ends a request itself after 60 s (`--request-timeout`), and this
/// provider opens no watch or stream: an answer later than this will not
/// come (a NAT or load balancer dropped the connection's state, the server
/// is frozen). The request is then retried on a new connection instead of
/// waiting for the operation's whole time limit.
const READ_TIMEOUT: Duration = Duration::from_secs(65);

/// The retry loop's account of a 403 from an API server that is not ready.
fn forbidden_while_starting(message: &str) -> String {
    format!("403 Forbidden while the API server is not ready (starting, its RBAC caches still empty): {message}")
}

/// When an operation must give up, and the token that stops it early
/// (StopProvider, the resource's `timeouts {}`).
#[derive(Clone, Debug)]
pub struct Deadline {
    cancel: CancellationToken,
    at: Instant,
    limit: Duration,
}

impl Deadline {
    /// `limit` from now, stopped early by `cancel`.
    pub fn new(cancel: &CancellationToken, limit: Duration) -> Self {
        Deadline {
            cancel: cancel.clone(),
            at: Instant::now() + limit,
            limit,
        }
    }

    /// The time limit this deadline was made with.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// The time left until the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Sleep `d` between polls of `what`.
    ///
    /// # Errors
    /// [`KubeError::Cancelled`] when cancelled, [`KubeError::WaitTimeout`]
    /// when the deadline passes first.
    pub async fn sleep(&self, d: Duration, what: &str) -> Result<(), KubeError> {
        match self.pause(d, what).await {
            Ok(()) => Ok(()),
            Err(Pause::Cancelled(e)) => Err(e),
            Err(Pause::Expired) => Err(KubeError::WaitTimeout {
                what: what.to_owned(),
                limit: self.limit,
            }),
        }
    }

    /// [`Deadline::sleep`] in a wait loop: at the deadline the error also
    /// says what was still awaited (`still`).
    ///
    /// # Errors
    /// As [`Deadline::sleep`].
    pub async fn sleep_awaiting(&self, d: Duration, what: &str, still: &str) -> Result<(), KubeError> {
        self.sleep(d, what).await.map_err(|e| match e {
            KubeError::WaitTimeout { what, limit } => KubeError::WaitTimeout {
                what: format!("{what} (still waiting: {still})"),
                limit,
            },
            other => other,
        })
    }

    /// Pause for `d` (cut short at the deadline). `Err` when cancelled or
    /// when the deadline passes first.
    pub(super) async fn pause(&self, d: Duration, what: &str) -> Result<(), Pause> {
        let until = Instant::now() + d;
        if until >= self.at {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(Pause::Cancelled(KubeError::Cancelled { what: what.to_owned() })),
                () = tokio::time::sleep_until(self.at) => return Err(Pause::Expired),
            }
        }
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Pause::Cancelled(KubeError::Cancelled { what: what.to_owned() })),
            () = tokio::time::sleep_until(until) => Ok(()),
        }
    }
}

pub(super) enum Pause {
    Cancelled(KubeError),
    Expired,
}

/// One slot per kubeconfig (by its SHA-256): the async mutex is held while
/// the client is built, so concurrent first uses build it once.
type Slot = Arc<tokio::sync::Mutex<Option<kube::Client>>>;

/// The provider-wide client cache. Clones share the same clients.
#[derive(Clone)]
pub struct Clients {
    /// A std Mutex: held only to find or insert a slot, never across an await.
    slots: Arc<Mutex<HashMap<[u8; 32], Slot>>>,
    /// [`READ_TIMEOUT`] (shorter in tests).
    read_timeout: Duration,
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            slots: Arc::default(),
            read_timeout: READ_TIMEOUT,
        }
    }
}

impl Clients {
    /// An empty cache.
    pub fn new() -> Self {
        Clients::default()
    }

    /// The client for `kubeconfig` (the text of a kubeconfig, its current
    /// context): built on first use, then shared.
    ///
    /// # Errors
    /// [`KubeError::Kubeconfig`] when the text is not a usable kubeconfig
    /// (the message never quotes it: it holds credentials).
    pub async fn client(&self, kubeconfig: &str) -> Result<Kube, KubeError> {
        let key: [u8; 32] = Sha256::digest(kubeconfig.as_bytes()).into();
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(key).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(client) = guard.as_ref() {
            return Ok(Kube { client: client.clone() });
        }
        let client = build(kubeconfig, self.read_timeout).await?;
        *guard = Some(client.clone());
        Ok(Kube { client })
    }
}

impl Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.slots.lock().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("Clients").field("kubeconfigs", &n).finish()
    }
}

async fn build(kubeconfig: &str, read_timeout: Duration) -> Result<kube::Client, KubeError> {
    // The parser's messages can quote the YAML (keys, tokens): say only
    // that it did not parse.
    let parsed = Kubeconfig::from_yaml(kubeconfig).map_err(|_| {
        KubeError::Kubeconfig("it is not kubeconfig YAML (apiVersion, clusters, contexts, users)".to_owned())
    })?;
    let mut config = kube::Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeError::Kubeconfig(e.to_string()))?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(read_timeout);
    // Counted from the request, not from when its pooled connection went idle.
    config.reset_reader_on_write = true;
    kube::Client::try_from(config).map_err(|e| KubeError::Kubeconfig(explain_client_error(&e.to_string())))
}

/// Say what to do about the client-building failures users hit.
fn explain_client_error(message: &str) -> String {
    if message.contains("UnsupportedCertVersion") {
        // rustls (through webpki) checks that the key matches the
        // certificate and accepts only X.509 v3 certificates; Go clients
        // (kubectl) also take v1.
        return "its client certificate (client-certificate-data) is an X.509 v1 certificate, which this provider's TLS stack (rustls) does not accept; issue it as v3 (kubeadm and k3s do), or authenticate with a token".to_owned();
    }
    message.to_owned()
}

/// A client for one cluster. Cheap to clone.
#[derive(Clone)]
pub struct Kube {
    pub(super) client: kube::Client,
}

/// What the typed operations need of an object type of scope `S`
/// (namespaced or cluster-scoped): one definition for both.
pub trait Object<S>:
    kube::Resource<Scope = S, DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static
{
}

impl<K, S> Object<S> for K where
    K: kube::Resource<Scope = S, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// A namespaced object type.
pub trait Namespaced: Object<NamespaceResourceScope> {}

impl<K: Object<NamespaceResourceScope>> Namespaced for K {}

/// "Secret gateway/gateway-token": how operations name an object.
pub fn describe<K: Namespaced>(namespace: &str, name: &str) -> String {
    format!("{} {namespace}/{name}", K::kind(&()))
}

impl Kube {
    fn api<K: Namespaced>(&self, namespace: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Run `op` until it succeeds, fails for good, the deadline passes or
    /// `dl` is cancelled; transient failures are retried with backoff.
    pub(super) async fn retrying<T, F, Fut>(&self, what: &str, dl: &Deadline, mut op: F) -> Result<T, KubeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut delay = FIRST_BACKOFF;
        let mut last = String::from("no answer yet");
        let mut first_forbidden: Option<Instant> = None;
        loop {
            let attempt = tokio::select! {
                biased;
                () = dl.cancel.cancelled() => return Err(KubeError::Cancelled { what: what.to_owned() }),
                () = tokio::time::sleep_until(dl.at) => {
                    return Err(KubeError::Timeout { what: what.to_owned(), limit: dl.limit, last });
                }
                r = op() => r,
            };
            let attempt = match attempt.map_err(|e| classify(what, e)) {
                // A restarted API server refuses with 403 until its RBAC
                // caches are filled: every user RBAC authorizes (kubeadm's
                // admin is one) is "forbidden" for some seconds. While
                // `/readyz` does not say ok, that is the server starting,
                // not the kubeconfig's permissions: retried, for a bounded
                // grace.
                Err(Attempt::Final(KubeError::Forbidden { message, .. }))
                    if first_forbidden.get_or_insert_with(Instant::now).elapsed() < STARTING_GRACE
                        && !self.api_server_ready().await =>
                {
                    Err(Attempt::Transient(forbidden_while_starting(&message)))
                }
                other => other,
            };
            match attempt {
                Ok(v) => return Ok(v),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Transient(msg)) => {
                    tracing::warn!(operation = %what, error = %msg, "transient Kubernetes API failure; retrying in {delay:?}");
                    last = msg;
                    match dl.pause(delay, what).await {
                        Ok(()) => {}
                        Err(Pause::Cancelled(e)) => return Err(e),
                        Err(Pause::Expired) => {
                            return Err(KubeError::Timeout {
                                what: what.to_owned(),
                                limit: dl.limit,
                                last,
                            });
                        }
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Whether the API server's `/readyz` answers ok (within
    /// [`READYZ_TIMEOUT`]); any other answer, or none, is "not ready".
    async fn api_server_ready(&self) -> bool {
        let Ok(req) = http::Request::get("/readyz").body(Vec::new()) else {
            return false;
        };
        matches!(
            tokio::time::timeout(READYZ_TIMEOUT, self.client.request_text(req)).await,
            Ok(Ok(body)) if body.trim() == "ok"
        )
    }

    /// Server-side apply of `obj` (which must carry its namespace and name)
    /// under this provider's field manager, taking over fields another
    /// manager changed (that is how drift is repaired). Returns the object
    /// as the server has it now.
    ///
    /// # Errors
    /// Refusals as their [`KubeError`] variant; transient failures past the
    /// deadline as [`KubeError::Timeout`].
    pub async fn apply<K: Namespaced>(&self, obj: &K, dl: &Deadline) -> Result<K, KubeError> {
        let meta = obj.meta();
        let (Some(namespace), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else {
            return Err(KubeError::Unexpected {
                what: format!("apply of a {}", K::kind(&())),
                message: "the object has no namespace or name (a bug in the provider)".to_owned(),
            });
        };
        let mut body = serde_json::to_value(obj).map_err(|e| KubeError::Unexpected {
            what: format!("apply of {}", describe::<K>(namespace, name)),
            message: e.to_string(),
        })?;
        // k8s-openapi leaves these out of the serialised body; apply needs them.
        if let Some(map) = body.as_object_mut() {
            map.insert("apiVersion".into(), K::api_version(&()).into());
            map.insert("kind".into(), K::kind(&()).into());
        }
        self.apply_json::<K>(namespace, name, &body, dl).await
    }

    /// Server-side apply of a JSON body (see [`Kube::apply`]); an identity
    /// only body ([`super::objects::release_body`]) gives up our fields.
    ///
    /// # Errors
    /// As [`Kube::apply`].
    pub async fn apply_json<K: Namespaced>(
        &self,
        namespace: &str,
        name: &str,
        body: &serde_json::Value,
        dl: &Deadline,
    ) -> Result<K, KubeError> {
        let what = format!("apply of {}", describe::<K>(namespace, name));
        tracing::debug!(operation = %what, field_manager = FIELD_MANAGER, "server-side apply");
        let api = self.api::<K>(namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(Redacted(body));
        self.retrying(&what, dl, || api.patch(name, &params, &patch)).await
    }

    /// The object, or `None` when it (or its namespace) does not exist.
    ///
    /// # Errors
    /// As [`Kube::apply`] (but never `NotFound`).
    pub async fn get<K: Namespaced>(&self, namespace: &str, name: &str, dl: &Deadline) -> Result<Option<K>, KubeError> {
        let what = format!("read of {}", describe::<K>(namespace, name));
        tracing::debug!(operation = %what, "get");
        let api = self.api::<K>(namespace);
        self.retrying(&what, dl, || api.get_opt(name)).await
    }

    /// Delete the object and wait until it is gone (its finalizers done).
    /// An object already gone is success.
    ///
    /// # Errors
    /// As [`Kube::apply`]; [`KubeError::WaitTimeout`] when the object is
    /// still there at the deadline.
    pub async fn delete_and_wait<K: Namespaced>(
        &self,
        namespace: &str,
        name: &str,
        dl: &Deadline,
    ) -> Result<(), KubeError> {
        self.delete_and_wait_with::<K>(namespace, name, DeleteParams::background(), dl)
            .await
    }

    /// As [`Kube::delete_and_wait`], but the object stays until the objects
    /// it owns are gone (a Deployment waits for its ReplicaSets and pods).
    ///
    /// # Errors
    /// As [`Kube::delete_and_wait`].
    pub async fn delete_with_dependents_and_wait<K: Namespaced>(
        &self,
        namespace: &str,
        name: &str,
        dl: &Deadline,
    ) -> Result<(), KubeError> {
        self.delete_and_wait_with::<K>(namespace, name, DeleteParams::foreground(), dl)
            .await
    }

    async fn delete_and_wait_with<K: Namespaced>(
        &self,
        namespace: &str,
        name: &str,
        params: DeleteParams,
        dl: &Deadline,
    ) -> Result<(), KubeError> {
        let what = format!("delete of {}", describe::<K>(namespace, name));
        self.delete_and_wait_in(self.api::<K>(namespace), name, what, params, dl)
            .await
    }

    /// Delete through `api` and wait until the object is gone (shared by the
    /// namespaced and the cluster-scoped deletes).
    pub(super) async fn delete_and_wait_in<K>(
        &self,
        api: Api<K>,
        name: &str,
        what: String,
        params: DeleteParams,
        dl: &Deadline,
    ) -> Result<(), KubeError>
    where
        K: kube::Resource + Clone + DeserializeOwned + Debug,
    {
        tracing::debug!(operation = %what, "delete");
        let deleted = self
            .retrying(&what, dl, || async {
                match api.delete(name, &params).await {
                    Ok(either) => Ok(either.left().and_then(|o| o.meta().uid.clone())),
                    Err(kube::Error::Api(s)) if s.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        let mut delay = Duration::from_millis(100);
        loop {
            let Some(obj) = self.retrying(&what, dl, || api.get_opt(name)).await? else {
                return Ok(());
            };
            // Deleted and already re-created by someone else: ours is gone.
            if deleted.is_some() && obj.meta().uid != deleted {
                return Ok(());
            }
            match dl.pause(delay, &what).await {
                Ok(()) => {}
                Err(Pause::Cancelled(e)) => return Err(e),
                Err(Pause::Expired) => return Err(KubeError::WaitTimeout { what, limit: dl.limit }),
            }
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
}

/// A request body whose `Debug` never shows its content (the body of a
/// Secret holds its data; `kube` requires `Debug` of patches).
pub(super) struct Redacted<'a>(pub(super) &'a serde_json::Value);

impl Serialize for Redacted<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<request body>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_kubeconfig_never_quotes_its_text() {
        let secret = "client-key-data: SECRETSECRET\n  - [unbalanced";
        let Err(e) = Clients::new().client(secret).await else {
            panic!("a broken kubeconfig must not give a client");
        };
        assert!(matches!(e, KubeError::Kubeconfig(_)));
        assert!(!e.to_string().contains("SECRETSECRET"), "{e}");
    }

    /// An API server that accepts each connection and closes it at once
    /// (as one restarting does), counting the attempts.
    fn closing_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let attempts = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = attempts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                seen.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        (port, attempts)
    }

    #[tokio::test]
    async fn transient_failures_end_at_the_deadline() {
        use std::sync::atomic::Ordering;
        // Every attempt fails transiently: retried until the deadline.
        let (port, attempts) = closing_server();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: abc}}\n"
        );
        let kube = Clients::new().client(&kubeconfig).await.unwrap();
        let cancel = CancellationToken::new();
        let dl = Deadline::new(&cancel, Duration::from_millis(900));
        let e = kube
            .get::<k8s_openapi::api::core::v1::Secret>("ns", "x", &dl)
            .await
            .unwrap_err();
        assert!(matches!(e, KubeError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("read of Secret ns/x"), "{e}");
        let tried = attempts.load(Ordering::SeqCst);
        assert!(tried >= 2, "a transient failure is retried ({tried} attempts)");

        // Cancellation stops the retries at once.
        let dl = Deadline::new(&cancel, Duration::from_secs(60));
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c2.cancel();
        });
        let e = kube
            .get::<k8s_openapi::api::core::v1::Secret>("ns", "x", &dl)
            .await
            .unwrap_err();
        assert!(matches!(e, KubeError::Cancelled { .. }), "{e}");
        // Nothing is tried once cancelled.
        let at_cancel = attempts.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            at_cancel,
            "attempts after cancellation"
        );
    }

    /// An API server over plain HTTP that answers each request (one per
    /// connection) with `answer(path, n)`, `n` counting the reads of the
    /// Secret: `(status, body)`; status 0 leaves the request unanswered.
    fn scripted_server(answer: fn(&str, usize) -> (u16, String)) -> u16 {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut reads = 0;
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut head = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                let _ = head.read_line(&mut line);
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                loop {
                    let mut l = String::new();
                    if head.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                        break;
                    }
                }
                if !path.starts_with("/readyz") {
                    reads += 1;
                }
                let (status, body) = answer(&path, reads);
                if status == 0 {
                    // No answer: the connection stays open and silent.
                    std::mem::forget(conn);
                    continue;
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        port
    }

    fn plain_kubeconfig(port: u16) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: abc}}\n"
        )
    }

    const FORBIDDEN: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"secrets \"x\" is forbidden: User \"kubernetes-admin\" cannot get resource \"secrets\"","reason":"Forbidden","code":403}"#;
    const SECRET: &str = r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"x","namespace":"ns"}}"#;

    #[tokio::test]
    async fn a_403_from_a_starting_api_server_is_retried_and_a_ready_ones_is_final() {
        // Restarting: /readyz fails and reads are forbidden, twice; then ready.
        let port = scripted_server(|path, n| match (path, n) {
            ("/readyz", n) if n <= 2 => (500, "[-]poststarthook/rbac/bootstrap-roles failed".into()),
            ("/readyz", _) => (200, "ok".into()),
            (_, n) if n <= 2 => (403, FORBIDDEN.into()),
            _ => (200, SECRET.into()),
        });
        let kube = Clients::new().client(&plain_kubeconfig(port)).await.unwrap();
        let cancel = CancellationToken::new();
        let dl = Deadline::new(&cancel, Duration::from_secs(20));
        let got = kube.get::<k8s_openapi::api::core::v1::Secret>("ns", "x", &dl).await;
        assert!(matches!(got, Ok(Some(_))), "{got:?}");

        // Ready: a 403 is the kubeconfig's permissions, at once.
        let port = scripted_server(|path, _| match path {
            "/readyz" => (200, "ok".into()),
            _ => (403, FORBIDDEN.into()),
        });
        let kube = Clients::new().client(&plain_kubeconfig(port)).await.unwrap();
        let dl = Deadline::new(&cancel, Duration::from_secs(20));
        let e = kube
            .get::<k8s_openapi::api::core::v1::Secret>("ns", "x", &dl)
            .await
            .unwrap_err();
        // (retried, it would end in a Timeout at the deadline)
        assert!(matches!(e, KubeError::Forbidden { .. }), "{e}");
    }

    #[tokio::test]
    async fn a_request_left_unanswered_is_retried_on_a_new_connection() {
        // The first read of the Secret gets no answer at all (a connection a
        // NAT forgot, a frozen server): after the read timeout it is tried
        // again, and the second connection answers.
        let port = scripted_server(|_, n| match n {
            1 => (0, String::new()),
            _ => (200, SECRET.into()),
        });
        let clients = Clients {
            read_timeout: Duration::from_millis(500),
            ..Clients::default()
        };
        let kube = clients.client(&plain_kubeconfig(port)).await.unwrap();
        let cancel = CancellationToken::new();
        let dl = Deadline::new(&cancel, Duration::from_secs(30));
        let started = Instant::now();
        let got = kube.get::<k8s_openapi::api::core::v1::Secret>("ns", "x", &dl).await;
        assert!(matches!(got, Ok(Some(_))), "{got:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "retried after the read timeout, not at the deadline: {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn v1_client_certificates_are_explained() {
        let m = explain_client_error(
            "rustls tls error: invalid private key: invalid peer certificate: Other(OtherError(UnsupportedCertVersion))",
        );
        assert!(m.contains("X.509 v1") && m.contains("v3"), "{m}");
        assert_eq!(explain_client_error("other"), "other");
    }

    #[tokio::test]
    async fn one_client_per_kubeconfig() {
        let kc = |server: &str| {
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: abc}}\n"
            )
        };
        let clients = Clients::new();
        clients.client(&kc("http://127.0.0.1:1")).await.unwrap();
        clients.client(&kc("http://127.0.0.1:1")).await.unwrap();
        clients.client(&kc("http://127.0.0.1:2")).await.unwrap();
        assert_eq!(clients.slots.lock().unwrap().len(), 2);
    }
}
