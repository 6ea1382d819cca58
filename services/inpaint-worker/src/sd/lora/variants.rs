//! Merged variants of a model's graphs, built once per LoRA set and kept
//! while they fit a byte budget (least recently used go first; the base
//! graphs are not in here and always stay). Two requests wanting the same
//! set at once share one merge. A variant evicted while requests still run
//! on it lives until they finish.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::SetEntry;
use super::file::Part;

/// A set as a cache key: names, exact weights (the WebUI compares its
/// multipliers exactly too, networks.py), dyn.
pub type Key = (Part, Vec<(String, u32, Option<usize>)>);

pub fn key(part: Part, set: &[SetEntry]) -> Key {
    (
        part,
        set.iter()
            .map(|e| (e.name.clone(), e.weight.to_bits(), e.dyn_dim))
            .collect(),
    )
}

struct Entry<T> {
    key: Key,
    cell: Arc<OnceCell<Arc<T>>>,
    bytes: u64,
    used: u64,
}

pub struct Variants<T> {
    budget: u64,
    inner: Mutex<(Vec<Entry<T>>, u64)>,
}

impl<T> Variants<T> {
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            inner: Mutex::new((vec![], 0)),
        }
    }

    /// Variants held now and their bytes.
    pub fn held(&self) -> (usize, u64) {
        let inner = self.inner.lock().expect("variants lock");
        let ready = inner.0.iter().filter(|e| e.cell.initialized());
        ready.fold((0, 0), |(n, b), e| (n + 1, b + e.bytes))
    }

    /// The variant for `key`, built by `build` (giving it and the time the
    /// merge took) when not held; the merge time is Some only for the
    /// request that ran it.
    pub async fn get<F, Fut>(
        &self,
        key: Key,
        bytes: u64,
        build: F,
    ) -> Result<(Arc<T>, Option<Duration>), String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, Duration), String>>,
    {
        let cell = {
            let mut inner = self.inner.lock().expect("variants lock");
            inner.1 += 1;
            let now = inner.1;
            match inner.0.iter_mut().find(|e| e.key == key) {
                Some(e) => {
                    e.used = now;
                    e.cell.clone()
                }
                None => {
                    let cell = Arc::new(OnceCell::new());
                    inner.0.push(Entry {
                        key: key.clone(),
                        cell: cell.clone(),
                        bytes,
                        used: now,
                    });
                    cell
                }
            }
        };
        let mut took = None;
        let built = cell
            .get_or_try_init(|| async {
                let (t, d) = build().await?;
                took = Some(d);
                Ok::<_, String>(Arc::new(t))
            })
            .await;
        let mut inner = self.inner.lock().expect("variants lock");
        match built {
            Ok(v) => {
                let v = v.clone();
                self.evict(&mut inner.0, &key);
                Ok((v, took))
            }
            Err(e) => {
                inner.0.retain(|x| x.key != key || x.cell.initialized());
                Err(e)
            }
        }
    }

    /// Drops the least recently used built variants other than `keep`
    /// while the built ones exceed the budget.
    fn evict(&self, entries: &mut Vec<Entry<T>>, keep: &Key) {
        loop {
            let total: u64 = entries
                .iter()
                .filter(|e| e.cell.initialized())
                .map(|e| e.bytes)
                .sum();
            if total <= self.budget {
                return;
            }
            let oldest = entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.cell.initialized() && &e.key != keep)
                .min_by_key(|(_, e)| e.used)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    let e = entries.remove(i);
                    tracing::info!(variant = ?e.key, bytes = e.bytes, "LoRA variant evicted");
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> Key {
        (Part::Unet, vec![(name.into(), 1f32.to_bits(), None)])
    }

    #[tokio::test]
    async fn built_once_shared_and_evicted_oldest_first() {
        let v = Variants::<String>::new(25);
        let build =
            |s: &'static str| move || async move { Ok((s.to_string(), Duration::from_millis(5))) };
        let (a, took) = v.get(k("a"), 10, build("a")).await.unwrap();
        assert_eq!((a.as_str(), took.is_some()), ("a", true));
        let (_, again) = v.get(k("a"), 10, build("never")).await.unwrap();
        assert_eq!(again, None, "cached: no merge");
        v.get(k("b"), 10, build("b")).await.unwrap();
        v.get(k("a"), 10, build("never")).await.unwrap(); // a is now newer than b
        v.get(k("c"), 10, build("c")).await.unwrap();
        assert_eq!(v.held(), (2, 20));
        let (_, rebuilt) = v.get(k("b"), 10, build("b")).await.unwrap();
        assert!(rebuilt.is_some(), "b was evicted");
        let failed = v
            .get(k("d"), 1, || async {
                Err::<(String, Duration), _>("no".to_string())
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(v.held().0, 2);
    }
}
