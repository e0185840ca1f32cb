//! The store's one owner. A dedicated thread holds the [`Store`] (a SQLite connection, which
//! blocks); everyone else sends it closures through a cloneable [`StoreHandle`]. Async code
//! awaits [`StoreHandle::call`] and never blocks a runtime worker on the disk; sync code
//! (the CLI's reports, work already on a blocking thread) uses [`StoreHandle::blocking`].
//!
//! Durability is the store's own (see its module doc): each closure's writes are committed
//! when the closure returns, and a caller that awaits the result knows they are. Closures
//! run one at a time, in the order they were sent. When the last handle goes, the thread
//! runs what was already sent, closes the database, and ends; dropping that last handle
//! waits for it, so a process that exits after its last write loses nothing.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use super::{Store, StoreError};

type Work = Box<dyn FnOnce(&mut Store) + Send>;

/// A cheap-to-clone door to the store's thread. See the module doc.
#[derive(Clone)]
pub struct StoreHandle {
    inner: Arc<Inner>,
}

struct Inner {
    /// None once dropped (which is what ends the thread).
    tx: Option<mpsc::Sender<Work>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
    /// The database file, for errors.
    db: String,
    /// [`Store::history_id`].
    history_id: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tx = None;
        let thread = self.thread.get_mut().ok().and_then(Option::take);
        if let Some(t) = thread {
            // The last handle may be dropped by a closure on the thread itself: no self-join.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl StoreHandle {
    /// Open the store in `dir` (see [`Store::open`]) and give it its thread.
    pub fn open(dir: &Path) -> Result<StoreHandle, StoreError> {
        Store::open(dir).map(StoreHandle::new)
    }

    /// Give an open store its thread.
    pub fn new(store: Store) -> StoreHandle {
        let dir = store.dir().to_path_buf();
        let db = store.path.clone();
        let history_id = store.history_id().to_string();
        let (tx, rx) = mpsc::channel::<Work>();
        let thread = std::thread::Builder::new()
            .name("imagegrid-store".into())
            .spawn(move || {
                let mut store = store;
                for work in rx {
                    // A closure that panics fails only its own call (its caller sees the
                    // store as unavailable); the next ones still run.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| work(&mut store)));
                }
            })
            .expect("spawn the history store's thread");
        StoreHandle {
            inner: Arc::new(Inner {
                tx: Some(tx),
                thread: Mutex::new(Some(thread)),
                dir,
                db,
                history_id,
            }),
        }
    }

    /// The data directory (the database and `logs/` are in it).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The history's id ([`Store::history_id`]; no call to the thread needed).
    pub fn history_id(&self) -> &str {
        &self.inner.history_id
    }

    /// Where build `id`'s log lives (no call to the thread needed).
    pub fn log_path(&self, id: i64) -> PathBuf {
        super::log_path_in(&self.inner.dir, id)
    }

    fn unavailable(&self) -> StoreError {
        StoreError::Unavailable {
            path: self.inner.db.clone(),
        }
    }

    fn send(&self, work: Work) -> Result<(), StoreError> {
        let tx = self.inner.tx.as_ref().ok_or_else(|| self.unavailable())?;
        tx.send(work).map_err(|_| self.unavailable())
    }

    /// Run `f` on the store's thread and await its result.
    /// Errors: [`StoreError::Unavailable`] if `f` panicked or the thread is gone.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Box::new(move |s| {
            let _ = tx.send(f(s));
        }))?;
        rx.await.map_err(|_| self.unavailable())
    }

    /// [`StoreHandle::call`] for a fallible `f`: its error, or the handle's.
    pub async fn try_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.call(f).await?
    }

    /// Run `f` on the store's thread and wait for its result, blocking this thread. For sync
    /// code only (never on an async runtime's worker).
    /// Errors: [`StoreError::Unavailable`] if `f` panicked or the thread is gone.
    pub fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Box::new(move |s| {
            let _ = tx.send(f(s));
        }))?;
        rx.recv().map_err(|_| self.unavailable())
    }

    /// [`StoreHandle::blocking`] for a fallible `f`.
    pub fn try_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.blocking(f)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BuildStatus, Finish, NewBuild};

    fn new_build(s: &mut Store) -> Result<i64, StoreError> {
        s.start(&NewBuild {
            cell: "d/opam/amd64",
            engine: "a",
            inputs: "h",
            tag: "t",
            base_image: None,
        })
    }

    #[tokio::test]
    async fn calls_run_in_order_and_survive_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let h = StoreHandle::open(dir.path()).unwrap();
        let id = h.try_call(new_build).await.unwrap();
        let panicked = h.call(|_| -> () { panic!("boom") }).await;
        assert!(
            matches!(panicked, Err(StoreError::Unavailable { .. })),
            "{panicked:?}"
        );
        h.try_call(move |s| s.finish(id, BuildStatus::Succeeded, &Finish::default()))
            .await
            .unwrap();
        let h2 = h.clone();
        let rec = tokio::task::spawn_blocking(move || h2.try_blocking(move |s| s.build(id)))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(rec.status, BuildStatus::Succeeded);
        assert_eq!(
            h.log_path(id),
            dir.path().join("logs").join(format!("{id}.log"))
        );
    }

    #[test]
    fn the_last_handle_waits_for_what_was_sent() {
        let dir = tempfile::tempdir().unwrap();
        let h = StoreHandle::open(dir.path()).unwrap();
        let id = h.try_blocking(new_build).unwrap();
        // Sent, not waited for: dropping the last handle still runs it.
        h.send(Box::new(move |s| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            s.finish(id, BuildStatus::Failed, &Finish::default())
                .unwrap();
        }))
        .unwrap();
        drop(h);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.build(id).unwrap().unwrap().status, BuildStatus::Failed);
    }
}
