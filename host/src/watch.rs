//! `host watch`: the hot-reload loop for a person writing a variant.
//!
//! Each variant directory is watched, with the package directories its
//! libraries are built from (path dependencies included). On every save the
//! variant is rebuilt (through the library cache, whose key covers those
//! files, so an edit builds a new library), put through the conformance
//! suite and evaluated on a quick query subset, and a short comparison is
//! printed: this version against the previous one of the same variant and
//! against the best `peer-*` variant measured with the same dataset and
//! settings. Every evaluation starts fresh workers, so the next worker loads
//! the new library. A failed build or check prints the compiler errors or
//! the failing checks and waits for the next save, and so does any error
//! of a round after the first.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use annvil_results::{LeaderboardRow, Scope, Status, Store};
use anyhow::{Context, Result};
use notify_debouncer_full::notify::event::ModifyKind;
use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

use crate::compile::Workspace;
use crate::coordinator::evaluate::{EvaluateOptions, evaluate};
use crate::judge::{JudgeOptions, Judgement, compiler_errors, judge};
use crate::prepare::{PreparedState, prepare_variants};
use crate::variant::{LibrarySource, SlotKind, VariantSpec};

/// Everything `host watch` needs.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// The variant directories to watch.
    pub variants: Vec<PathBuf>,
    /// Peers to evaluate once at startup (when the results database does
    /// not hold them with these settings yet).
    pub peers: Vec<PathBuf>,
    /// How each version is measured (the quick subset).
    pub evaluate: EvaluateOptions,
    /// Threads of the conformance suite's builds.
    pub check_threads: usize,
    /// How long the files must stay quiet before a round starts.
    pub debounce: Duration,
}

/// What wakes the loop.
enum Wake {
    /// Files changed.
    Saved(Vec<PathBuf>),
    /// Ctrl-C.
    Stop,
}

/// A watched variant and what is known of its versions.
struct Watched {
    dir: PathBuf,
    name: String,
    /// The directories and files its libraries are built from.
    roots: BTreeSet<PathBuf>,
    /// The variant hash of the last version judged.
    last_hash: Option<String>,
    /// How many versions were judged.
    versions: usize,
    /// The leaderboard row of the last version that was measured.
    previous: Option<LeaderboardRow>,
}

impl Watched {
    fn new(dir: &Path) -> Result<Watched> {
        let spec = VariantSpec::load(dir)?;
        let mut roots = BTreeSet::from([spec.dir.clone()]);
        for kind in SlotKind::ALL {
            match &spec.slot(kind).library {
                LibrarySource::Package(package) => {
                    let dirs = Workspace::discover(package)
                        .and_then(|ws| ws.source_dirs_of(package))
                        .unwrap_or_else(|_| BTreeSet::from([package.clone()]));
                    roots.extend(dirs);
                }
                LibrarySource::File(file) => {
                    roots.insert(file.clone());
                }
            }
        }
        Ok(Watched {
            dir: spec.dir,
            name: spec.name,
            roots,
            last_hash: None,
            versions: 0,
            previous: None,
        })
    }

    /// Whether a change of `path` can change what this variant runs.
    fn depends_on(&self, path: &Path) -> bool {
        self.roots.iter().any(|root| path.starts_with(root))
    }
}

/// Runs `host watch` until Ctrl-C. An error of the first round (a
/// variant that does not load, a dataset that cannot be read) ends it; a
/// later round's error is printed and the loop waits for the next save.
pub fn watch(options: &WatchOptions) -> Result<()> {
    let mut variants = options
        .variants
        .iter()
        .map(|dir| Watched::new(dir))
        .collect::<Result<Vec<_>>>()?;
    let (wake, woken) = mpsc::channel();
    stop_on_ctrl_c(wake.clone())?;
    let mut debouncer = new_debouncer(
        options.debounce,
        None,
        move |result: DebounceEventResult| forward_changes(result, &wake),
    )
    .context("starting the file watcher")?;
    let roots: BTreeSet<&PathBuf> = variants.iter().flat_map(|v| &v.roots).collect();
    for root in roots {
        debouncer
            .watch(root, RecursiveMode::Recursive)
            .with_context(|| format!("watching {}", root.display()))?;
    }
    if !options.peers.is_empty() {
        println!("watch: measuring the peers once with the same settings");
        evaluate(&options.peers, &options.evaluate)?;
    }
    let scratch = tempfile::tempdir()?;
    let mut session = Session {
        options,
        scratch: scratch.path(),
        peer_hint_given: false,
    };
    for variant in &mut variants {
        session.round(variant)?;
    }
    loop {
        println!("watch: waiting for changes (Ctrl-C to stop)");
        let Some(changed) = next_changes(&woken) else {
            break;
        };
        for variant in variants.iter_mut() {
            if changed.iter().any(|path| variant.depends_on(path))
                && let Err(error) = session.round(variant)
            {
                // A save can break what the round reads (a half-written
                // variant.yaml, say): say why and wait for the next one.
                println!("watch: {}: {error:#}", variant.name);
            }
        }
    }
    println!("watch: stopped");
    Ok(())
}

/// The next batch of changed paths (with any further batches already
/// waiting), or `None` on Ctrl-C.
fn next_changes(woken: &Receiver<Wake>) -> Option<Vec<PathBuf>> {
    let mut changed = match woken.recv() {
        Ok(Wake::Saved(paths)) => paths,
        Ok(Wake::Stop) | Err(_) => return None,
    };
    while let Ok(more) = woken.try_recv() {
        match more {
            Wake::Saved(paths) => changed.extend(paths),
            Wake::Stop => return None,
        }
    }
    Some(changed)
}

/// The first Ctrl-C asks the loop to stop once the current round is done;
/// a second one exits at once.
fn stop_on_ctrl_c(wake: Sender<Wake>) -> Result<()> {
    let pressed = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if pressed.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("watch: stopping after the current round (Ctrl-C again to stop at once)");
        let _ = wake.send(Wake::Stop);
    })
    .context("installing the Ctrl-C handler")
}

/// Forwards the paths of debounced changes that can alter a build: writes,
/// creations, removals and renames (not reads or metadata), outside build
/// output (`target/`, a standalone package's copied `Cargo.lock`) and
/// editors' swap and backup files.
fn forward_changes(result: DebounceEventResult, wake: &Sender<Wake>) {
    let events = match result {
        Ok(events) => events,
        Err(errors) => {
            for error in errors {
                eprintln!("watch: file watcher: {error}");
            }
            return;
        }
    };
    let paths: Vec<PathBuf> = events
        .iter()
        .filter(|event| match event.kind {
            EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
            EventKind::Modify(kind) => !matches!(kind, ModifyKind::Metadata(_)),
            EventKind::Access(_) | EventKind::Other => false,
        })
        .flat_map(|event| event.paths.iter().cloned())
        .filter(|path| !is_noise(path))
        .collect();
    if !paths.is_empty() {
        let _ = wake.send(Wake::Saved(paths));
    }
}

/// Build output and editors' scratch files.
fn is_noise(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.components().any(|c| c.as_os_str() == "target")
        || name == "Cargo.lock"
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || name == "4913"
}

/// State shared by the rounds of one `host watch`.
struct Session<'a> {
    options: &'a WatchOptions,
    scratch: &'a Path,
    /// Whether the "no peer measured" hint was printed already.
    peer_hint_given: bool,
}

impl Session<'_> {
    /// Rebuilds, checks and evaluates `variant`, and prints the comparison.
    fn round(&mut self, variant: &mut Watched) -> Result<()> {
        let (prepared, _) = prepare_variants(std::slice::from_ref(&variant.dir), false, |_| {})?;
        let prepared = prepared
            .into_iter()
            .next()
            .context("one variant prepared")?;
        if let PreparedState::Ready { hash, .. } = &prepared.state {
            if variant.last_hash.as_ref() == Some(hash) {
                return Ok(());
            }
            variant.last_hash = Some(hash.clone());
        }
        variant.versions += 1;
        println!(
            "\nwatch: {} version {}: building, checking, evaluating",
            variant.name, variant.versions
        );
        // Every save is measured, even a return to a version measured
        // before, so the leaderboard's row of the name is this version's.
        let evaluate_options = EvaluateOptions {
            force: true,
            ..self.options.evaluate.clone()
        };
        let options = JudgeOptions {
            evaluate: &evaluate_options,
            check_threads: self.options.check_threads,
            scratch: self.scratch,
        };
        match judge(&prepared, &options, &mut |_: &str| {})? {
            Judgement::BuildFailed { reason, log } => {
                println!(
                    "watch: {}: build failed: {reason}\n{}",
                    variant.name,
                    compiler_errors(&log)
                );
            }
            Judgement::CheckFailed { table } => {
                println!(
                    "watch: {}: the conformance suite failed:\n{table}",
                    variant.name
                );
            }
            Judgement::EvaluationFailed { status } => {
                println!("watch: {}: evaluation failed: {status}", variant.name);
            }
            Judgement::Measured { row, evaluated } => {
                let store = Store::open(&evaluated.database)?;
                let peer = best_peer(&store, &evaluated.scope)?;
                if peer.is_none() && !self.peer_hint_given {
                    self.peer_hint_given = true;
                    println!(
                        "watch: no peer-* variant is measured on {} ({}) in {}; pass \
                         --peer variants/peer-hnswlib (say) to measure one at startup",
                        evaluated.scope.dataset_name,
                        evaluated.scope.config.describe(),
                        evaluated.database.display()
                    );
                }
                print!(
                    "{}",
                    comparison(&row, variant.previous.as_ref(), peer.as_ref())
                );
                variant.previous = Some(*row);
            }
        }
        Ok(())
    }
}

/// The `peer-*` row with the highest reward in `scope`.
fn best_peer(store: &Store, scope: &Scope) -> Result<Option<LeaderboardRow>> {
    Ok(store
        .leaderboard_for(scope)?
        .rows
        .into_iter()
        .filter(|r| r.variant_name.starts_with("peer-") && r.status == Status::Ok)
        .max_by(|a, b| a.reward.total_cmp(&b.reward)))
}

/// The figures compared: name and value.
fn figures(row: &LeaderboardRow) -> [(&'static str, Option<f64>); 5] {
    [
        ("reward", Some(row.reward)),
        ("QPS@0.90", row.qps_at_090),
        ("QPS@0.95", row.qps_at_095),
        ("max recall", row.max_recall),
        ("build s", row.build_seconds),
    ]
}

/// The comparison table of `this` version against the `previous` one and
/// the best `peer`, with the relative changes.
fn comparison(
    this: &LeaderboardRow,
    previous: Option<&LeaderboardRow>,
    peer: Option<&LeaderboardRow>,
) -> String {
    let mut rows = vec![("this version".to_owned(), this)];
    rows.extend(previous.map(|row| ("previous version".to_owned(), row)));
    rows.extend(peer.map(|row| (row.variant_name.clone(), row)));
    let mut out = format!("{:<20}", "");
    for (name, _) in figures(this) {
        out.push_str(&format!("{name:>12}"));
    }
    out.push('\n');
    for (label, row) in &rows {
        out.push_str(&format!("{label:<20}"));
        for (name, value) in figures(row) {
            out.push_str(&format!("{:>12}", shown(name, value)));
        }
        out.push('\n');
    }
    for (label, other) in [("vs previous", previous), ("vs best peer", peer)] {
        let Some(other) = other else { continue };
        out.push_str(&format!("{label:<20}"));
        for ((_, a), (_, b)) in figures(this).into_iter().zip(figures(other)) {
            let change = match (a, b) {
                (Some(a), Some(b)) if b != 0.0 => format!("{:+.1} %", (a / b - 1.0) * 100.0),
                _ => "—".into(),
            };
            out.push_str(&format!("{change:>12}"));
        }
        out.push('\n');
    }
    out
}

/// A figure as the table shows it.
fn shown(name: &str, value: Option<f64>) -> String {
    match value {
        None => "—".into(),
        Some(v) if name == "max recall" => format!("{:.4}", (v * 1e4).trunc() / 1e4),
        Some(v) if name == "build s" => format!("{v:.2}"),
        Some(v) => format!("{v:.0}"),
    }
}
