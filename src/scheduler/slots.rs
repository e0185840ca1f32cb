//! Engine slots: one per configured engine. Connecting, pinging, and the health events the
//! faces show. A slot that loses its engine is reconnected by the health loop.

use std::time::{Duration, Instant};

use super::actor::{Internal, JobState};
use super::route::{native_arches, SlotSnapshot, SlotState};
use super::{BuildEvent, EngineHealth, Scheduler};
use crate::config::FrontendMode;
use crate::engine::builder::{FrontendProbe, PIPELINE_SYNTAX};
use crate::engine::{Engine, EngineError, EngineSpec};

/// How long an engine may take to look the frontend image up in its registry.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a down engine is retried and an idle one pinged.
const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// How often an engine's disk use is measured again (system df can take a while).
const DISK_EVERY: Duration = Duration::from_secs(60);

/// One configured engine and what the scheduler knows about it.
pub(super) struct Slot {
    pub spec: EngineSpec,
    /// Connected and answering (as far as the last ping or build knows).
    pub engine: Option<Engine>,
    /// A connection attempt is under way.
    pub connecting: bool,
    /// The first connection attempt has finished (either way).
    pub tried: bool,
    /// Builds running on it now.
    pub running: usize,
    pub last_error: Option<String>,
    pub last_check: Instant,
    /// When its disk use was last asked for.
    pub last_disk: Option<Instant>,
    /// Whether the `# syntax=` frontend image resolves from it: probed once, on its first
    /// connection of a run with `[build] frontend = "directive"`.
    pub syntax_probe: Option<FrontendProbe>,
}

impl Slot {
    pub fn new(spec: EngineSpec) -> Slot {
        Slot {
            spec,
            engine: None,
            connecting: false,
            tried: false,
            running: 0,
            last_error: None,
            last_check: Instant::now(),
            last_disk: None,
            syntax_probe: None,
        }
    }

    /// What routing needs to know of it now.
    pub fn snapshot(&self) -> SlotSnapshot {
        SlotSnapshot {
            name: self.spec.name.clone(),
            arches: self.spec.arches.clone(),
            native: native_arches(&self.spec.arches, self.engine.as_ref().map(|e| &e.info)),
            state: match (&self.engine, self.tried) {
                (Some(_), _) => SlotState::Up,
                (None, false) => SlotState::Connecting,
                (None, true) => SlotState::Down,
            },
            running: self.running,
            max_parallel: self.spec.max_parallel,
            last_error: self.last_error.clone(),
            speed: 1.0,
            busy: Vec::new(),
        }
    }

    /// The engine is gone (a failed ping or build): reconnect later, say why meanwhile.
    pub fn lost(&mut self, why: String) {
        self.engine = None;
        self.last_error = Some(why);
        self.last_check = Instant::now();
    }
}

impl Scheduler {
    pub(super) fn health(&self, i: usize) -> EngineHealth {
        let s = &self.slots[i];
        let queued = self
            .jobs
            .iter()
            .filter(|j| j.state == JobState::Pending && s.spec.arches.contains(&j.plan.cell.arch))
            .count();
        EngineHealth {
            engine: s.spec.name.clone(),
            endpoint: s
                .engine
                .as_ref()
                .map(|e| e.endpoint.to_string())
                .unwrap_or_else(|| s.spec.endpoint.to_string()),
            reachable: s.engine.is_some(),
            info: s.engine.as_ref().map(|e| e.info.clone()),
            arches: s.spec.arches.clone(),
            running: s.running,
            queued,
            last_error: s.last_error.clone(),
            max_parallel: s.spec.max_parallel,
            tried: s.tried,
            slot: i,
        }
    }

    pub(super) fn emit_health(&self, i: usize) {
        self.emit(BuildEvent::Engine(self.health(i)));
    }

    /// Measure slot `i`'s disk use in the background, when due; the event follows.
    fn measure_disk(&mut self, i: usize) {
        let s = &mut self.slots[i];
        let (Some(e), true) = (
            &s.engine,
            s.last_disk.is_none_or(|t| t.elapsed() >= DISK_EVERY),
        ) else {
            return;
        };
        s.last_disk = Some(Instant::now());
        let (e, ctx) = (e.clone(), self.ctx.clone());
        tokio::spawn(async move {
            if let Ok(disk) = e.disk_use().await {
                ctx.send(BuildEvent::EngineDisk {
                    engine: e.name().to_string().into(),
                    disk,
                });
            }
        });
    }

    /// Start connecting slot `i` in the background (unless already under way).
    pub(super) fn connect(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if slot.connecting {
            return;
        }
        slot.connecting = true;
        slot.last_check = Instant::now();
        let spec = slot.spec.clone();
        let known = slot.syntax_probe.clone();
        let probe = self.ctx.opts.frontend == FrontendMode::Directive;
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let mut r = Engine::connect(&spec).await;
            if let Ok(e) = &mut r {
                if probe && e.info.builder.buildkit {
                    e.info.builder.syntax = match known {
                        Some(p) => p,
                        None => e.probe_frontend(PIPELINE_SYNTAX, PROBE_TIMEOUT).await,
                    };
                }
            }
            let _ = tx.send(Internal::Connected(i, Box::new(r)));
        });
    }

    /// Every `HEALTH_EVERY`: reconnect down engines, ping the others.
    pub(super) fn check_engines(&mut self) {
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.connecting || s.last_check.elapsed() < HEALTH_EVERY {
                continue;
            }
            match &s.engine {
                None => self.connect(i),
                Some(e) => {
                    let e = e.clone();
                    let tx = self.internal_tx.clone();
                    self.measure_disk(i);
                    self.slots[i].last_check = Instant::now();
                    tokio::spawn(async move {
                        let r = e.ping().await;
                        let _ = tx.send(Internal::Pinged(i, r));
                    });
                }
            }
        }
    }

    /// A connection attempt of slot `i` ended.
    pub(super) fn connected(&mut self, i: usize, r: Result<Engine, EngineError>) {
        let s = &mut self.slots[i];
        s.connecting = false;
        s.tried = true;
        s.last_check = Instant::now();
        match r {
            Ok(e) => {
                if e.info.builder.syntax != FrontendProbe::Unprobed {
                    s.syntax_probe = Some(e.info.builder.syntax.clone());
                }
                s.engine = Some(e);
                s.last_error = None;
            }
            Err(e) => {
                s.engine = None;
                s.last_error = Some(e.message);
            }
        }
        self.emit_health(i);
        self.measure_disk(i);
    }

    /// A ping of slot `i` ended; only a failure changes anything.
    pub(super) fn pinged(&mut self, i: usize, r: Result<(), EngineError>) {
        if let Err(e) = r {
            let s = &mut self.slots[i];
            s.engine = None;
            s.last_error = Some(e.message);
            self.emit_health(i);
        }
    }
}
