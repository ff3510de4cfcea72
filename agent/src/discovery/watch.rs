//! The IO of pod discovery: a `kube` client (`kube_config`, else in-cluster), and
//! `kube::runtime`'s watcher over the pods (list, then watch from the list's resourceVersion;
//! a broken watch resumed from the last one seen, with bookmarks; 410 Gone relisted; errors
//! retried with its default backoff), each event turned into a [`TargetSet`] change at once.
//!
//! A pod owned by a ReplicaSet costs one GET of that ReplicaSet the first time (when a
//! `deployment` workload tag is configured), then the answer is cached; a failed GET is retried
//! every [`LOOKUP_RETRY`], the pod scraped meanwhile without its Deployment tag.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::watch as signal;

use super::owners::{Owners, deployment_of};
use super::targets::{PodTarget, Verdict, evaluate, pod_key};
use super::{Error, Result, TargetSet};
use crate::config::{PodDiscovery, PodScrapeScope};

/// How often ReplicaSet GETs that failed are tried again.
pub const LOOKUP_RETRY: Duration = Duration::from_secs(10);

/// The kube client: from `kube_config` when set, else inferred (in-cluster service account,
/// `$KUBECONFIG`, `~/.kube/config`).
pub async fn client(settings: &PodDiscovery) -> Result<Client> {
    let config = match &settings.kube_config {
        Some(path) => {
            let error = |source: Box<dyn std::error::Error + Send + Sync>| Error::KubeConfig {
                path: path.display().to_string(),
                source,
            };
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| error(e.into()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| error(e.into()))?
        }
        None => kube::Config::infer().await.map_err(Error::Infer)?,
    };
    Client::try_from(config).map_err(Error::Client)
}

/// The field selector sent: `kubernetes_field_selector`, and `spec.nodeName=<node>` in node
/// scope when the node's name is known.
pub fn field_selector(settings: &PodDiscovery) -> String {
    let mut terms: Vec<String> = Vec::new();
    if !settings.field_selector.is_empty() {
        terms.push(settings.field_selector.clone());
    }
    if settings.scope == PodScrapeScope::Node
        && let Some(node) = &settings.node_name
    {
        terms.push(format!("spec.nodeName={node}"));
    }
    terms.join(",")
}

/// Watches the pods until `stopped`, keeping `set` equal to the pods to scrape; `prepare`
/// turns a pod's target into what the input scrapes (an error is warned about, naming the
/// pod, and the pod is not scraped).
pub async fn run<T>(
    input: String,
    settings: PodDiscovery,
    client: Client,
    set: Arc<TargetSet<T>>,
    prepare: impl Fn(&PodTarget) -> Result<T, String>,
    mut stopped: signal::Receiver<bool>,
) {
    let pods: Api<Pod> = if settings.namespace.is_empty() {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), &settings.namespace)
    };
    let mut config = watcher::Config::default();
    if !settings.label_selector.is_empty() {
        config = config.labels(&settings.label_selector);
    }
    let fields = field_selector(&settings);
    if !fields.is_empty() {
        config = config.fields(&fields);
    }
    let mut events = watcher::watcher(pods, config).default_backoff().boxed();
    let mut state = State {
        input,
        settings,
        client,
        set,
        prepare,
        owners: Owners::default(),
        listing: None,
        retry: HashMap::new(),
    };
    state.owners = Owners::new(state.settings.workload_tags.clone());
    let mut retry = tokio::time::interval(LOOKUP_RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(input = %state.input, fields = %fields, labels = %state.settings.label_selector, namespace = %state.settings.namespace, "watching pods");
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            event = events.next() => match event {
                None => return,
                Some(Ok(event)) => state.on_event(event).await,
                Some(Err(error)) => state.on_error(&error),
            },
            _ = retry.tick() => state.retry_lookups().await,
        }
    }
}

struct State<T, P> {
    input: String,
    settings: PodDiscovery,
    client: Client,
    set: Arc<TargetSet<T>>,
    prepare: P,
    owners: Owners,
    /// The targets of a list in progress (a relist replaces the set when it is done).
    listing: Option<BTreeMap<String, Arc<T>>>,
    /// Pods whose ReplicaSet GET failed, to evaluate again after a retry.
    retry: HashMap<String, Pod>,
}

impl<T, P: Fn(&PodTarget) -> Result<T, String>> State<T, P> {
    async fn on_event(&mut self, event: Event<Pod>) {
        match event {
            Event::Init => {
                self.owners.clear();
                self.retry.clear();
                self.listing = Some(BTreeMap::new());
            }
            Event::InitApply(pod) => {
                let key = pod_key(&pod);
                if let Some(target) = self.target(&pod).await
                    && let Some(listing) = self.listing.as_mut()
                {
                    listing.insert(key, Arc::new(target));
                }
            }
            Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                tracing::info!(input = %self.input, targets = listed.len(), "pods listed");
                self.set.replace_all(listed);
            }
            Event::Apply(pod) => {
                let key = pod_key(&pod);
                match self.target(&pod).await {
                    Some(target) => {
                        if self.set.insert(key.clone(), target) {
                            tracing::info!(input = %self.input, pod = %key, "pod scraped");
                        }
                    }
                    None => {
                        if self.set.remove(&key) {
                            tracing::info!(input = %self.input, pod = %key, "pod no longer scraped");
                        }
                    }
                }
            }
            Event::Delete(pod) => {
                let key = pod_key(&pod);
                self.retry.remove(&key);
                if self.set.remove(&key) {
                    tracing::info!(input = %self.input, pod = %key, "pod deleted; no longer scraped");
                }
            }
        }
    }

    fn on_error(&self, error: &watcher::Error) {
        let refused = match error {
            watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status)) => {
                (status.code == 400).then(|| status.message.clone())
            }
            watcher::Error::WatchError(status) if status.code == 400 => {
                Some(status.message.clone())
            }
            _ => None,
        };
        match refused {
            Some(message) => tracing::warn!(
                input = %self.input,
                kubernetes_label_selector = %self.settings.label_selector,
                kubernetes_field_selector = %field_selector(&self.settings),
                %message,
                "the API server refused the pod selector; no pods discovered until it is fixed (retrying with backoff)"
            ),
            None => {
                tracing::warn!(input = %self.input, %error, "pod watch failed; retrying with backoff")
            }
        }
    }

    /// The prepared target of `pod`, or `None` when it is not scraped (now).
    async fn target(&mut self, pod: &Pod) -> Option<T> {
        let key = pod_key(pod);
        self.look_up_owner(pod).await;
        match evaluate(pod, &self.settings, &self.owners.tags_of(pod)) {
            Verdict::Scrape(target) => match (self.prepare)(&target) {
                Ok(prepared) => Some(prepared),
                Err(message) => {
                    tracing::warn!(input = %self.input, pod = %key, url = %target.url, %message, "pod not scraped");
                    None
                }
            },
            Verdict::Wait(reason) => {
                tracing::debug!(input = %self.input, pod = %key, reason, "pod waits");
                None
            }
            Verdict::Skip => None,
            Verdict::Invalid(message) => {
                tracing::warn!(input = %self.input, pod = %key, "{message}");
                None
            }
        }
    }

    /// GETs the pod's ReplicaSet if its Deployment is not known yet.
    async fn look_up_owner(&mut self, pod: &Pod) {
        let Some((namespace, name)) = self.owners.lookup_needed(pod) else {
            self.retry.remove(&pod_key(pod));
            return;
        };
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &namespace);
        match api.get_opt(&name).await {
            Ok(found) => {
                let deployment = found
                    .and_then(|rs| rs.metadata.owner_references)
                    .and_then(|refs| deployment_of(&refs));
                self.owners.record_replicaset(&namespace, &name, deployment);
                self.retry.remove(&pod_key(pod));
            }
            Err(error) => {
                tracing::warn!(input = %self.input, pod = %pod_key(pod), replicaset = %name, %error, "cannot read the pod's ReplicaSet; scraped without its deployment tag until a retry succeeds");
                self.retry.insert(pod_key(pod), pod.clone());
            }
        }
    }

    async fn retry_lookups(&mut self) {
        let pods: Vec<Pod> = self.retry.values().cloned().collect();
        for pod in pods {
            if self.owners.lookup_needed(&pod).is_none() {
                continue;
            }
            let key = pod_key(&pod);
            if let Some(target) = self.target(&pod).await
                && self.set.pods().contains(&key)
            {
                self.set.insert(key, target);
            }
        }
    }
}
