//! API keys and tenants on the public API. A call carries
//! `authorization: Bearer KEY`; the keys file holds the SHA-256 of each key
//! (never the key) and the tenant it belongs to, with each tenant's limits,
//! and is read again when it changes, without a restart. Only the
//! `Inpainting` service is guarded: health and reflection stay open.
//!
//! ```toml
//! [[keys]]
//! tenant = "acme"
//! sha256 = "5e88...d8"   # printf %s KEY | sha256sum
//!
//! [tenants.acme]
//! requests_per_second = 10      # work-creating calls (default: no limit)
//! max_inflight_requests = 8     # synchronous calls at once
//! max_inflight_pixels = 20000000
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::error::Error;
use crate::inflight::{InFlight, Limits};

/// How often the keys file's modification time is looked at.
const RECHECK: Duration = Duration::from_secs(1);

/// Who a call is for. Handlers read it from the request's extensions;
/// without auth every call is the open tenant (named "").
#[derive(Clone)]
pub struct Caller(pub Arc<TenantPolicy>);

impl Caller {
    pub fn open() -> Self {
        Self(Arc::new(TenantPolicy::unlimited("")))
    }

    pub fn of<T>(request: &Request<T>) -> Self {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(Caller::open)
    }

    pub fn tenant(&self) -> &str {
        &self.0.name
    }
}

/// A tenant and its limits (none by default).
pub struct TenantPolicy {
    pub name: Arc<str>,
    pub rate: Option<RateLimit>,
    pub inflight: Option<Arc<InFlight>>,
}

impl TenantPolicy {
    fn unlimited(name: &str) -> Self {
        Self {
            name: name.into(),
            rate: None,
            inflight: None,
        }
    }
}

/// A token bucket: `per_second` tokens a second, holding at most
/// `max(1, per_second)`.
pub struct RateLimit {
    per_second: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(per_second: f64) -> Self {
        Self {
            per_second,
            bucket: Mutex::new((per_second.max(1.0), Instant::now())),
        }
    }

    /// Takes `n` tokens, or says how long until there are enough.
    pub fn take(&self, n: f64) -> Result<(), Duration> {
        let capacity = self.per_second.max(1.0);
        let mut bucket = self.bucket.lock().expect("rate limit lock");
        let now = Instant::now();
        let (tokens, since) = *bucket;
        let tokens =
            (tokens + now.duration_since(since).as_secs_f64() * self.per_second).min(capacity);
        if tokens >= n {
            *bucket = (tokens - n, now);
            return Ok(());
        }
        *bucket = (tokens, now);
        let wait = if self.per_second > 0.0 {
            (n.min(capacity) - tokens) / self.per_second
        } else {
            3600.0
        };
        Err(Duration::from_secs_f64(wait.max(0.001)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
    #[serde(default)]
    tenants: HashMap<String, TenantLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    tenant: String,
    sha256: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TenantLimits {
    requests_per_second: Option<f64>,
    max_inflight_requests: Option<u64>,
    max_inflight_pixels: Option<u64>,
}

struct Loaded {
    modified: Option<SystemTime>,
    checked: Instant,
    by_hash: HashMap<[u8; 32], Arc<TenantPolicy>>,
}

/// The keys file, read at start (an unreadable or invalid file stops the
/// gateway, naming it) and again whenever it changes (an invalid new
/// version is logged and the previous keys stay).
pub struct Keys {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

impl Keys {
    pub fn load(path: &Path) -> Result<Self, String> {
        let (modified, by_hash) = read(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            loaded: RwLock::new(Loaded {
                modified,
                checked: Instant::now(),
                by_hash,
            }),
        })
    }

    /// The tenant whose key is `key`, if any.
    pub fn tenant_for(&self, key: &str) -> Option<Arc<TenantPolicy>> {
        self.reload_if_changed();
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let loaded = self.loaded.read().expect("keys lock");
        loaded.by_hash.get(&hash).cloned()
    }

    fn reload_if_changed(&self) {
        {
            let loaded = self.loaded.read().expect("keys lock");
            if loaded.checked.elapsed() < RECHECK {
                return;
            }
        }
        let mut loaded = self.loaded.write().expect("keys lock");
        loaded.checked = Instant::now();
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified == loaded.modified {
            return;
        }
        match read(&self.path) {
            Ok((modified, by_hash)) => {
                tracing::info!(path = %self.path.display(), keys = by_hash.len(), "API keys reloaded");
                loaded.modified = modified;
                loaded.by_hash = by_hash;
            }
            Err(e) => {
                // Kept from trying again until the file changes once more.
                loaded.modified = modified;
                tracing::error!(%e, "API keys file not reloaded; the previous keys stay");
            }
        }
    }

    /// Checks a call's `authorization` header and records its tenant.
    pub fn check(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let Some(key) = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Err(Error::Unauthenticated(
                "an API key is required: send the header `authorization: Bearer KEY`".into(),
            )
            .into());
        };
        let Some(tenant) = self.tenant_for(key) else {
            return Err(Error::Unauthenticated("unknown API key".into()).into());
        };
        request.extensions_mut().insert(Caller(tenant));
        Ok(request)
    }
}

/// The SHA-256 of a key as the keys file writes it (lowercase hex).
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

type Parsed = (Option<SystemTime>, HashMap<[u8; 32], Arc<TenantPolicy>>);

fn read(path: &Path) -> Result<Parsed, String> {
    let at = |e: String| format!("API keys file {}: {e}", path.display());
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let file: KeysFile = toml::from_str(&text).map_err(|e| at(e.to_string()))?;
    let mut policies: HashMap<String, Arc<TenantPolicy>> = HashMap::new();
    let mut by_hash = HashMap::new();
    for (i, entry) in file.keys.iter().enumerate() {
        let name = &entry.tenant;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            return Err(at(format!(
                "keys[{i}].tenant {name:?}: 1 to 64 of A-Z a-z 0-9 - _ ."
            )));
        }
        let hash = parse_hash(&entry.sha256)
            .ok_or_else(|| at(format!("keys[{i}].sha256: 64 hex digits")))?;
        let policy = policies.entry(name.clone()).or_insert_with(|| {
            let limits = file.tenants.get(name);
            Arc::new(policy(name, limits))
        });
        by_hash.insert(hash, policy.clone());
    }
    if let Some(unused) = file.tenants.keys().find(|t| !policies.contains_key(*t)) {
        return Err(at(format!("tenants.{unused}: no key belongs to it")));
    }
    Ok((modified, by_hash))
}

fn policy(name: &str, limits: Option<&TenantLimits>) -> TenantPolicy {
    let Some(limits) = limits else {
        return TenantPolicy::unlimited(name);
    };
    let inflight = (limits.max_inflight_requests.is_some() || limits.max_inflight_pixels.is_some())
        .then(|| {
            InFlight::new(Limits {
                max_requests: limits.max_inflight_requests.unwrap_or(u64::MAX),
                max_pixels: limits.max_inflight_pixels.unwrap_or(u64::MAX),
            })
        });
    TenantPolicy {
        name: name.into(),
        rate: limits.requests_per_second.map(RateLimit::new),
        inflight,
    }
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The store's id of a tenant's job or idempotency key: the tenant's name
/// and `~` before the public one, so that one tenant's ids never name
/// another's jobs (an unknown id and another tenant's read the same:
/// NOT_FOUND). The open tenant's ids are unchanged.
pub fn scoped(tenant: &str, id: &str) -> String {
    if tenant.is_empty() {
        id.to_string()
    } else {
        format!("{tenant}~{id}")
    }
}

/// The public id of a stored one.
pub fn public(id: &str) -> &str {
    id.split_once('~').map_or(id, |(_, public)| public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refills_at_its_rate() {
        let limit = RateLimit::new(2.0);
        assert!(limit.take(1.0).is_ok());
        assert!(limit.take(1.0).is_ok());
        let wait = limit.take(1.0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(500) && wait > Duration::ZERO,
            "{wait:?}"
        );
        std::thread::sleep(Duration::from_millis(520));
        assert!(limit.take(1.0).is_ok());
    }

    #[test]
    fn hashes_are_sha256_hex() {
        // sha256("password"), as `sha256sum` prints it.
        assert_eq!(
            hash_key("password"),
            "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        );
        assert_eq!(
            parse_hash(&hash_key("x")),
            Some(Sha256::digest(b"x").into())
        );
        assert_eq!(parse_hash("abc"), None);
    }

    fn parsed(body: &str) -> Result<usize, String> {
        let path = std::env::temp_dir().join(format!(
            "inpaint-keys-{}-{:x}.toml",
            std::process::id(),
            Sha256::digest(body.as_bytes())[0]
        ));
        std::fs::write(&path, body).unwrap();
        let out = read(&path).map(|(_, keys)| keys.len());
        let _ = std::fs::remove_file(&path);
        out
    }

    #[test]
    fn keys_files_are_checked_field_by_field() {
        let key = |tenant: &str| {
            format!(
                "[[keys]]\ntenant = \"{tenant}\"\nsha256 = \"{}\"\n",
                hash_key(tenant)
            )
        };
        // The Kubernetes base ships one with no keys at all.
        assert_eq!(parsed("# No keys yet\n"), Ok(0));
        assert_eq!(parsed(&(key("a") + &key("b"))), Ok(2));
        let limits = key("a") + "[tenants.a]\nrequests_per_second = 2\nmax_inflight_requests = 1\n";
        assert_eq!(parsed(&limits), Ok(1));
        for (body, says) in [
            (key("a b"), "keys[0].tenant"),
            (
                "[[keys]]\ntenant = \"a\"\nsha256 = \"12\"\n".to_string(),
                "keys[0].sha256",
            ),
            (key("a") + "[tenants.ghost]\n", "tenants.ghost"),
            (key("a") + "[tenants.a]\nburst = 3\n", "burst"),
        ] {
            let err = parsed(&body).unwrap_err();
            assert!(err.contains(says) && err.contains("API keys file"), "{err}");
        }
    }

    #[test]
    fn ids_are_scoped_by_tenant() {
        assert_eq!(scoped("acme", "0f1e"), "acme~0f1e");
        assert_eq!(public("acme~0f1e"), "0f1e");
        assert_eq!(scoped("", "0f1e"), "0f1e");
        assert_eq!(public("0f1e"), "0f1e");
    }
}
