//! Propagation on several workers with [timely dataflow](https://github.com/TimelyDataflow/timely-dataflow)
//! (feature `distributed`): worker threads in one process, or processes on several machines
//! that talk over TCP.
//!
//! **Same answer, bit for bit.** The workers run the single-machine engine's own Jacobi
//! sweep, each over its share of the nodes, so a run on any number of workers and processes
//! gives the distributions, the per-iteration objective and changes and the convergence of
//! [`propagate_with`](super::propagate_with) exactly (tested on 1–4 workers). Three choices
//! make that hold:
//! - the nodes are shared out in whole blocks of the engine's block size, contiguous and in
//!   order, so each block's figures are the ones the single engine computes;
//! - a node's update reads its neighbours in the graph's order, whoever owns them;
//! - every worker receives every block's figures and sums them in block order, so all
//!   workers see the same objective and change and stop at the same iteration.
//!
//! **One iteration** on worker `w`: sweep its own nodes (with the rayon pool, as the single
//! engine does), send each other worker the new rows of the nodes it reads (the ghosts it
//! asked for once, at the start) with `w`'s block figures, then wait until timely's progress
//! tracking says every worker's messages of this iteration have arrived. At the end every
//! worker sends its rows to worker 0, which normalizes and reports as
//! [`propagate_with`](super::propagate_with) does.
//!
//! **Memory.** Label state is O((own + ghost nodes) · K) per worker, plus 4 bytes a node for
//! the map from graph ids to the worker's own numbering, plus the rule's per-node
//! coefficients, which every worker computes for every node (8 bytes a node for Expander,
//! about 32 for MAD). A process keeps the edges of its own rows only when it loads the graph
//! with [`Graph::load_rows`] and [`Cluster::rows`] (as `sprig propagate --hosts` does): then
//! it holds every node's offset, degree and walk entropy (24 bytes a node) and its rows'
//! edges (8 bytes each), not the whole graph. Each process still reads the whole `.graph`
//! file once (to verify its checksum), so processes need the file on their machine or a
//! shared disk; only worker 0 holds every node's result, at the end.
//!
//! **Failure.**
//! - Processes started with another graph, other seeds or another config stop together at
//!   the start with an error (they compare a fingerprint of these first).
//! - A worker that panics in its sweep or in the progress callback tells the others in
//!   its next messages; all stop at that round and the run returns the panic as an error.
//!   A panic elsewhere in a worker (only a bug could raise one: setting up its rows,
//!   checking a round's counts, worker 0 gathering the result) is not caught there, and
//!   leaves the other workers waiting for its messages (mutation testing found this: such
//!   mutants hang the tests rather than fail them).
//! - timely's own threads fail when the processes do not match (another `workers` count or
//!   hosts list) or one of them dies mid-run: the run returns an error too. timely has no
//!   fault tolerance, so such a run must be started again.
//! - timely waits at start-up until every process has connected, and prints `awaiting
//!   connections` (or, in the processes after the first, `error connecting … retrying`) to
//!   stdout meanwhile. A process that fails before it connects (a missing file, a bad flag)
//!   would leave the others waiting for ever: [`Cluster::connect_timeout`] bounds the wait,
//!   after which the run returns an error. It also bounds each iteration afterwards: timely
//!   notices a peer that died (its socket closes), but not one that stopped (frozen, or cut
//!   off without a reset), nor a listener on a peer's address that is not a sprig process of
//!   this cluster; without the bound those would leave the others waiting for ever.

use std::cell::RefCell;
use std::ops::{ControlFlow, Range};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use timely::communication::Config as CommunicationConfig;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange as ExchangePact;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Input, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle};
use timely::worker::Worker;
use timely::WorkerConfig;

use super::engine::{combine, SeedRows, SweepStats, Topology, BLOCK};
use super::labels::{LabelDistribution, LabelScore};
use super::PropagationConfig;
use super::{finish, iterate, prepare, Algo, IterationStats, Outcome, Propagation};
use crate::error::{Error, Result};
use crate::graph::{Graph, Seed};

/// Where the workers of a distributed run are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Worker threads in this process (at least 1). Each sweeps its nodes with the rayon
    /// pool, so one worker per machine is usually the right number.
    pub workers: usize,
    /// One `host:port` per process, in process order, the same list for every process; empty
    /// for a run inside this process alone.
    pub hosts: Vec<String>,
    /// This process's index in `hosts` (0 when `hosts` is empty).
    pub process: usize,
    /// How long a process of a multi-process run waits for the others to connect, and then
    /// for each iteration to finish, before it gives up with [`Error::Cluster`]; `None`
    /// waits for ever. timely's threads cannot be cancelled: after a timeout they stay
    /// blocked (holding process 0's port) until the process exits, which is what a
    /// command-line caller does next.
    pub connect_timeout: Option<Duration>,
}

impl Cluster {
    /// `workers` threads in this process.
    pub fn local(workers: usize) -> Self {
        Cluster {
            workers,
            hosts: Vec::new(),
            process: 0,
            connect_timeout: None,
        }
    }

    /// The `host:port` lines of a hosts file, one per process in process order (blank lines
    /// and `#` comments skipped; an IPv6 address in brackets: `[::1]:2101`). Checked here,
    /// so that a typo is reported with its line before any work.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Parse`] naming the line that is not
    /// `host:port` with a port from 1 to 65535 and no spaces, or the file if it lists none.
    pub fn read_hosts(path: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut hosts: Vec<String> = Vec::new();
        // Where each address was first given: two processes cannot listen on one.
        let mut first_at = std::collections::HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let valid = line.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && !line.contains(char::is_whitespace)
                    && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !valid {
                return Err(Error::parse(
                    path,
                    i as u64 + 1,
                    format!(
                        "expected host:port (a port from 1 to 65535, no spaces), found {line:?}"
                    ),
                ));
            }
            if let Some(first) = first_at.insert(line.to_string(), i + 1) {
                return Err(Error::parse(
                    path,
                    i as u64 + 1,
                    format!(
                        "{line} is given twice (first on line {first}): one process an address"
                    ),
                ));
            }
            hosts.push(line.to_string());
        }
        if hosts.is_empty() {
            return Err(Error::parse(path, 1, "no host:port line"));
        }
        Ok(hosts)
    }

    /// Checks the sizes.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for no workers, or a process index outside `hosts`.
    pub fn validate(&self) -> Result<()> {
        if self.workers == 0 {
            return Err(Error::config("workers", "must be at least 1"));
        }
        if self.hosts.is_empty() && self.process != 0 {
            return Err(Error::config(
                "process",
                "a process index needs the list of hosts",
            ));
        }
        if !self.hosts.is_empty() && self.process >= self.hosts.len() {
            return Err(Error::config(
                "process",
                format!(
                    "{} is not below the number of hosts ({})",
                    self.process,
                    self.hosts.len()
                ),
            ));
        }
        Ok(())
    }

    /// The nodes whose rows this process's workers sweep in a graph of `n` nodes: the rows
    /// a process needs, and all that [`Graph::load_rows`] has to keep
    /// (`Graph::load_rows(path, |n| cluster.rows(n))`). Every node for a run inside one
    /// process.
    pub fn rows(&self, n: usize) -> Range<usize> {
        if self.workers == 0 {
            return 0..0;
        }
        let peers = self.workers * self.hosts.len().max(1);
        let first = self.process * self.workers;
        nodes_of(n, peers, first).start..nodes_of(n, peers, first + self.workers - 1).end
    }

    fn timely_config(&self) -> timely::Config {
        let communication = match (self.hosts.len(), self.workers) {
            (0, 1) => CommunicationConfig::Thread,
            (0, n) => CommunicationConfig::Process(n),
            _ => CommunicationConfig::Cluster {
                threads: self.workers,
                process: self.process,
                addresses: self.hosts.clone(),
                report: false,
                zerocopy: false,
            },
        };
        timely::Config {
            communication,
            worker: WorkerConfig::default(),
        }
    }
}

/// [`propagate_with`](super::propagate_with) on the workers of `cluster`. Every process of
/// the cluster calls it with the same graph, seeds and config; the result is returned in the
/// process that holds worker 0 (process 0), and `None` in the others. `on_iteration` is
/// called in every process (by its first worker), once per iteration, in order, with the
/// same figures everywhere.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use sprig::graph::{Graph, GraphKind, GraphParts, RecordRef, Seed};
/// use sprig::propagate::{propagate, propagate_distributed, Cluster, PropagationConfig};
///
/// // A path a — b — c with `a` seeded "x".
/// let parts = GraphParts {
///     offsets: vec![0, 1, 3, 4],
///     neighbors: vec![1, 0, 2, 1],
///     weights: vec![1.0; 4],
///     keys: ["a", "b", "c"].map(String::from).to_vec(),
///     text_nodes: 3,
///     records: (0..3).map(|i| RecordRef { line: i + 1, id: None, node: i as u32, text_hash: None }).collect(),
///     labels: vec!["x".into()],
///     seeds: vec![Seed { node: 0, label: 0, weight: 1.0 }],
///     provenance: serde_json::Value::Null,
/// };
/// let graph = Arc::new(Graph::from_parts(GraphKind::Edges, parts)?);
/// let config = PropagationConfig::default();
/// // Two worker threads in this process; with `hosts`, processes on other machines.
/// let result = propagate_distributed(
///     Arc::clone(&graph),
///     graph.seeds(),
///     &config,
///     &Cluster::local(2),
///     |s| eprintln!("iteration {}: objective {:.4}", s.iteration, s.objective),
/// )?
/// .expect("worker 0 runs in this process");
/// let alone = propagate(&graph, &config)?;
/// assert_eq!(result.distribution(), alone.distribution());
/// # Ok::<(), sprig::Error>(())
/// ```
///
/// # Errors
/// As [`propagate_with`](super::propagate_with) (where `graph` may hold only this process's
/// rows, [`Cluster::rows`]), plus [`Error::InvalidConfig`] for a bad `cluster` or a graph
/// without some of this process's rows, and [`Error::Cluster`] when the processes cannot
/// connect or a worker fails.
pub fn propagate_distributed(
    graph: Arc<Graph>,
    seeds: &[Seed],
    config: &PropagationConfig,
    cluster: &Cluster,
    on_iteration: impl Fn(&IterationStats) + Send + Sync + 'static,
) -> Result<Option<Propagation>> {
    let start = Instant::now();
    cluster.validate()?;
    let (need, held) = (cluster.rows(graph.n_nodes()), graph.rows());
    if need.start < held.start || need.end > held.end {
        return Err(Error::config(
            "graph",
            format!(
                "holds rows {held:?}, and process {} of this cluster sweeps rows {need:?}: \
                 load it with Graph::load_rows(path, |n| cluster.rows(n))",
                cluster.process
            ),
        ));
    }
    let (seed_rows, priors) = prepare(&graph, seeds, config)?;
    let (alive_tx, alive) = mpsc::channel();
    let shared = Arc::new(Shared {
        alive: alive_tx,
        first_worker: cluster.process * cluster.workers,
        fingerprint: fingerprint(&graph, seeds, config),
        graph,
        seed_rows,
        priors,
        config: config.clone(),
        start,
        on_iteration: Box::new(on_iteration),
    });
    // timely's own threads panic when the processes do not match (another --workers, say)
    // or one of them dies; the guards re-raise that here, and it becomes an error.
    let timely_config = cluster.timely_config();
    let run = move || {
        let run = move || {
            let guards = timely::execute(timely_config, move |worker| {
                // Workers start once every process has connected (the first message is the
                // one awaited; the receiver may be gone).
                let _ = shared.alive.send(());
                run_worker(worker, &shared)
            })?;
            Ok(guards.join())
        };
        match panic::catch_unwind(AssertUnwindSafe(run)) {
            Ok(joined) => joined,
            Err(p) => Err(format!(
                "{} (timely's threads stopped: check that every process was started with \
                 the same hosts file and --workers, and that none of them died)",
                panic_message(p.as_ref())
            )),
        }
    };
    let joined = match cluster.connect_timeout.filter(|_| cluster.hosts.len() > 1) {
        None => run(),
        Some(limit) => {
            // timely blocks until every process has connected; wait for that on another
            // thread, so that a process that never comes is an error, not a hang.
            let runner = std::thread::Builder::new()
                .name("sprig-cluster".into())
                .spawn(run)
                .map_err(|e| Error::Cluster {
                    message: format!("cannot start the cluster's thread: {e}"),
                })?;
            let mut connected = false;
            loop {
                match alive.recv_timeout(limit) {
                    // A worker started (every process connected), or finished an iteration.
                    Ok(()) => connected = true,
                    // Every worker is done (or failed before any started): the senders were
                    // dropped.
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) if !connected => {
                        return Err(Error::Cluster {
                            message: format!(
                                "process {} of {}: the other processes did not all connect \
                                 within {} s (is every process of the hosts file started, \
                                 with the same hosts file, and can each reach the others' \
                                 ports?)",
                                cluster.process,
                                cluster.hosts.len(),
                                limit.as_secs_f64()
                            ),
                        });
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        return Err(Error::Cluster {
                            message: format!(
                                "process {} of {}: no iteration finished within {} s (did a \
                                 process stop, or is an address of the hosts file another \
                                 program's? the limit is --connect-timeout)",
                                cluster.process,
                                cluster.hosts.len(),
                                limit.as_secs_f64()
                            ),
                        });
                    }
                }
            }
            runner
                .join()
                .unwrap_or_else(|p| Err(panic_message(p.as_ref())))
        }
    };
    let mut result = None;
    for outcome in joined.map_err(|message| Error::Cluster { message })? {
        match outcome {
            Ok(Ok(Some(p))) => result = Some(p),
            Ok(Ok(None)) => {}
            Ok(Err(message)) | Err(message) => return Err(Error::Cluster { message }),
        }
    }
    Ok(result)
}

/// What every worker of a process reads.
struct Shared {
    /// Told by each worker as it starts, that is once every process has connected, and as
    /// it finishes each iteration: what [`Cluster::connect_timeout`] watches.
    alive: mpsc::Sender<()>,
    /// The global index of this process's first worker, which calls `on_iteration`.
    first_worker: usize,
    fingerprint: u64,
    graph: Arc<Graph>,
    seed_rows: SeedRows,
    priors: Option<Vec<f64>>,
    config: PropagationConfig,
    start: Instant,
    on_iteration: Box<dyn Fn(&IterationStats) + Send + Sync>,
}

/// The messages between workers. One kind, routed by `to`: a round either asks for rows
/// (the first), or carries rows and block figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Packet {
    /// The round it belongs to (a fast worker's next round can arrive early).
    round: u64,
    to: u32,
    from: u32,
    /// Graph ids, ascending: the rows asked for (first round) or gathered (last round). The
    /// rounds in between carry the rows asked for, in that order, without their ids.
    nodes: Vec<u32>,
    /// The rows' unknown masses.
    unknown: Vec<f32>,
    /// The rows' K slots each.
    slots: Vec<LabelScore>,
    /// The sender's first block, and the figures of its blocks in order.
    first_block: u64,
    stats: Vec<SweepStats>,
    /// First round: the sender's [`fingerprint`] of its graph, seeds and config.
    fingerprint: u64,
    /// Why the sender (or a worker before it) stopped: every worker then stops too.
    failed: Option<String>,
}

impl Packet {
    fn new(round: u64, to: usize, from: usize) -> Self {
        Packet {
            round,
            to: to as u32,
            from: from as u32,
            nodes: Vec::new(),
            unknown: Vec::new(),
            slots: Vec::new(),
            first_block: 0,
            stats: Vec::new(),
            fingerprint: 0,
            failed: None,
        }
    }
}

/// One worker's timely dataflow: an input, an exchange by destination, and an inbox.
struct Mailbox {
    input: InputHandleVec<u64, Packet>,
    probe: ProbeHandle<u64>,
    inbox: Rc<RefCell<Vec<Packet>>>,
}

impl Mailbox {
    fn new(worker: &mut Worker) -> Self {
        let mut input = InputHandleVec::new();
        let probe = ProbeHandle::new();
        let inbox = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&inbox);
        worker.dataflow(|scope| {
            // Routed by destination into an operator that moves what arrives into the inbox
            // (the packets are large: no copy) and outputs nothing; the probe behind it
            // passes a round once every packet of the round is in an inbox.
            scope
                .input_from(&mut input)
                .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    ExchangePact::new(|p: &Packet| u64::from(p.to)),
                    "Inbox",
                    move |_, _| {
                        move |input, _output| {
                            input.for_each(|_, packets| sink.borrow_mut().append(packets))
                        }
                    },
                )
                .probe_with(&probe);
        });
        Mailbox {
            input,
            probe,
            inbox,
        }
    }

    /// Sends `packets`, waits until every worker's packets of this round have arrived, and
    /// returns the ones addressed here, by sender.
    fn round(&mut self, worker: &mut Worker, packets: Vec<Packet>) -> Vec<Packet> {
        let round = *self.input.time();
        for p in packets {
            debug_assert_eq!(p.round, round);
            self.input.send(p);
        }
        self.input.advance_to(round + 1);
        while self.probe.less_than(self.input.time()) {
            worker.step_or_park(None);
        }
        let mut inbox = self.inbox.borrow_mut();
        let (mut now, later): (Vec<Packet>, Vec<Packet>) =
            inbox.drain(..).partition(|p| p.round == round);
        *inbox = later;
        now.sort_by_key(|p| p.from);
        now
    }

    fn time(&self) -> u64 {
        *self.input.time()
    }
}

/// A worker's share of the graph: its own nodes (local ids `0..own.len()`), then the other
/// workers' nodes that their rows name (the ghosts). The rows themselves are the graph's,
/// read in place: only the map from graph ids to local ids is this worker's (4 bytes a node).
struct Share<'a> {
    graph: &'a Graph,
    own: Range<usize>,
    ghosts: Vec<u32>,
    local: Vec<u32>,
}

impl<'a> Share<'a> {
    fn new(graph: &'a Graph, own: Range<usize>) -> Self {
        let mut ghosts: Vec<u32> = own
            .clone()
            .flat_map(|v| graph.row(v).0.iter().copied())
            .filter(|&u| !own.contains(&(u as usize)))
            .collect();
        ghosts.sort_unstable();
        ghosts.dedup();
        let mut local = vec![u32::MAX; graph.n_nodes()];
        for (i, v) in own.clone().enumerate() {
            local[v] = i as u32;
        }
        for (i, &g) in ghosts.iter().enumerate() {
            local[g as usize] = (own.len() + i) as u32;
        }
        Share {
            graph,
            own,
            ghosts,
            local,
        }
    }

    fn n_local(&self) -> usize {
        self.own.len() + self.ghosts.len()
    }

    /// Positions in `ghosts` of the ghosts that `range` (another worker's nodes) holds.
    fn ghosts_in(&self, range: &Range<usize>) -> Range<usize> {
        let lo = self.ghosts.partition_point(|&g| (g as usize) < range.start);
        let hi = self.ghosts.partition_point(|&g| (g as usize) < range.end);
        lo..hi
    }
}

impl Topology for Share<'_> {
    #[inline]
    fn row(&self, v: usize) -> (&[u32], &[f32]) {
        self.graph.row(self.own.start + v)
    }

    #[inline]
    fn global(&self, v: usize) -> usize {
        if v < self.own.len() {
            self.own.start + v
        } else {
            self.ghosts[v - self.own.len()] as usize
        }
    }

    #[inline]
    fn local(&self, u: usize) -> usize {
        self.local[u] as usize
    }
}

/// A hash of what every process must agree on: the graph's nodes, row lengths, degrees,
/// edges and labels, the seeds and the config. Processes started with different files or flags would otherwise
/// exchange rows that mean nothing to each other.
fn fingerprint(graph: &Graph, seeds: &[Seed], config: &PropagationConfig) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&(graph.n_nodes() as u64).to_le_bytes());
    h.update(&(graph.n_text_nodes() as u64).to_le_bytes());
    // Offsets and degrees, which every process has for every node, also one that holds
    // only its own rows (Graph::load_rows).
    for &o in graph.offsets() {
        h.update(&o.to_le_bytes());
    }
    for v in 0..graph.n_nodes() {
        h.update(&graph.degree(v).to_bits().to_le_bytes());
    }
    // And the edges themselves: two files whose rows have the same lengths and degrees (an
    // edge list with two endpoints swapped) passed before (a review found it).
    h.update(&graph.edge_digest().to_le_bytes());
    for label in graph.labels() {
        h.update(&(label.len() as u64).to_le_bytes());
        h.update(label.as_bytes());
    }
    for s in seeds {
        h.update(&s.node.to_le_bytes());
        h.update(&s.label.to_le_bytes());
        h.update(&s.weight.to_bits().to_le_bytes());
    }
    h.update(
        serde_json::to_string(config)
            .expect("a config serializes")
            .as_bytes(),
    );
    h.digest()
}

/// The nodes of worker `w` of `peers`: whole blocks, contiguous, in order.
fn nodes_of(n: usize, peers: usize, w: usize) -> Range<usize> {
    let blocks = n.div_ceil(BLOCK);
    let at = |w: usize| (w * blocks / peers * BLOCK).min(n);
    at(w)..at(w + 1)
}

/// Copies local rows `rows` of `dist` into `packet`.
fn pack(dist: &LabelDistribution, rows: impl Iterator<Item = usize>, packet: &mut Packet) {
    let k = dist.top_k();
    let (slots, unknown) = dist.raw();
    for v in rows {
        packet.slots.extend_from_slice(&slots[v * k..(v + 1) * k]);
        packet.unknown.push(unknown[v]);
    }
}

/// Copies `packet`'s rows into local rows `first..` of `dist`.
fn unpack(packet: &Packet, dist: &mut LabelDistribution, first: usize) {
    let k = dist.top_k();
    let (slots, unknown) = dist.raw_mut();
    let n = packet.unknown.len();
    slots[first * k..(first + n) * k].copy_from_slice(&packet.slots);
    unknown[first..first + n].copy_from_slice(&packet.unknown);
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|m| m.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// One worker's run: `Ok(Some)` on worker 0, `Ok(None)` on the others, `Err` (on every
/// worker) when the processes disagree on their inputs or a worker failed.
fn run_worker(
    worker: &mut Worker,
    shared: &Shared,
) -> std::result::Result<Option<Propagation>, String> {
    let Shared {
        graph,
        seed_rows,
        config,
        ..
    } = shared;
    let (index, peers) = (worker.index(), worker.peers());
    let n = graph.n_nodes();
    let n_labels = graph.labels().len();
    let share = Share::new(graph, nodes_of(n, peers, index));
    let n_own = share.own.len();
    let first_block = (share.own.start / BLOCK) as u64;
    let mut mail = Mailbox::new(worker);

    // First round: check that every worker has the same inputs, ask each owner for the rows
    // this worker reads, and learn what to send whom.
    let hellos = (0..peers)
        .map(|p| {
            let mut hello = Packet::new(mail.time(), p, index);
            hello.fingerprint = shared.fingerprint;
            if p != index {
                hello.nodes = share.ghosts[share.ghosts_in(&nodes_of(n, peers, p))].to_vec();
            }
            hello
        })
        .collect();
    let mut sends: Vec<Packet> = mail.round(worker, hellos);
    // Every worker sees every fingerprint, so all of them stop here together.
    if let Some(other) = sends.iter().find(|p| p.fingerprint != shared.fingerprint) {
        return Err(format!(
            "worker {} has another graph, seed set or config than worker {index} \
             (fingerprints {:016x} and {:016x}): start every process with the same graph \
             file, seeds and flags",
            other.from, other.fingerprint, shared.fingerprint
        ));
    }
    sends.retain(|p| !p.nodes.is_empty());

    // A worker that fails (its sweep or its progress callback panics) says so in its
    // next packets; every worker sees every packet of a round, so all stop at that round
    // instead of waiting for figures that will not come.
    let failure: RefCell<Option<String>> = RefCell::new(None);
    let fail = |what: &str, panic: Box<dyn std::any::Any + Send>| {
        let message = panic_message(panic.as_ref());
        failure
            .borrow_mut()
            .get_or_insert(format!("worker {index} failed in {what}: {message}"));
    };
    // The first failure any worker reported in `packets` (they come by sender).
    let failed_in = |packets: &[Packet]| packets.iter().find_map(|p| p.failed.clone());

    let algo = Algo::new(graph, seed_rows, config);
    let mut sweep = |prev: &LabelDistribution, next: &mut LabelDistribution| {
        let mut stats = Vec::new();
        if failure.borrow().is_none() {
            let run = || algo.sweep_blocks(&share, seed_rows, n_labels, prev, next, n_own);
            match panic::catch_unwind(AssertUnwindSafe(run)) {
                Ok(s) => stats = s,
                Err(p) => fail("its sweep", p),
            }
        }
        let round = mail.time();
        let failed = failure.borrow().clone();
        let mut packets: Vec<Packet> = (0..peers)
            .map(|p| {
                let mut packet = Packet::new(round, p, index);
                packet.first_block = first_block;
                packet.stats.clone_from(&stats);
                packet.failed.clone_from(&failed);
                packet
            })
            .collect();
        if failed.is_none() {
            // The rows each worker asked for, in the order it asked (no ids: it knows them).
            for ask in &sends {
                let rows = ask.nodes.iter().map(|&g| g as usize - share.own.start);
                pack(next, rows, &mut packets[ask.from as usize]);
            }
        }
        let received = mail.round(worker, packets);
        if let Some(f) = failed_in(&received) {
            failure.borrow_mut().get_or_insert(f);
            return None;
        }
        let mut blocks = vec![None; n.div_ceil(BLOCK)];
        for packet in &received {
            let theirs = share.ghosts_in(&nodes_of(n, peers, packet.from as usize));
            assert_eq!(
                packet.unknown.len(),
                if packet.from as usize == index {
                    0
                } else {
                    theirs.len()
                },
                "worker {} sent another number of rows than worker {index} asked for",
                packet.from
            );
            unpack(packet, next, n_own + theirs.start);
            for (i, s) in packet.stats.iter().enumerate() {
                blocks[packet.first_block as usize + i] = Some(*s);
            }
        }
        let blocks: Vec<SweepStats> = blocks
            .into_iter()
            .map(|b| b.expect("every block's figures arrive"))
            .collect();
        Some(combine(&blocks))
    };
    let init = seed_rows.initial_of(
        (0..share.n_local()).map(|v| share.global(v)),
        config.top_k,
        algo.init,
    );
    let mut report = |s: &IterationStats| {
        // Alive (the receiver may be gone).
        let _ = shared.alive.send(());
        if index == shared.first_worker && failure.borrow().is_none() {
            let call = || (shared.on_iteration)(s);
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(call)) {
                fail("the progress callback", p);
            }
        }
        // Only worker 0 sees the callback: the workers cannot stop on its word alone.
        ControlFlow::Continue(())
    };
    let outcome = iterate(&mut sweep, init, config, algo.residual, &mut report);
    let Some(outcome) = outcome else {
        return Err(failure.take().expect("a sweep gives up only on a failure"));
    };

    // Every other worker's rows to worker 0, which finishes as the single engine does (and
    // a failure of the last callback stops them all here).
    let round = mail.time();
    let failed = failure.borrow().clone();
    let mut packets: Vec<Packet> = (0..peers)
        .map(|p| {
            let mut packet = Packet::new(round, p, index);
            packet.failed.clone_from(&failed);
            packet
        })
        .collect();
    if index != 0 {
        packets[0].nodes = (share.own.start as u32..share.own.end as u32).collect();
        pack(&outcome.dist, 0..n_own, &mut packets[0]);
    }
    let gathered = mail.round(worker, packets);
    if let Some(f) = failed_in(&gathered) {
        return Err(failure.take().unwrap_or(f));
    }
    if index != 0 {
        return Ok(None);
    }
    let Outcome {
        dist: own,
        initial_objective,
        history,
        converged,
        stopped,
    } = outcome;
    let mut dist = LabelDistribution::new(n, config.top_k, 0.0);
    {
        let k = config.top_k;
        let (from_slots, from_unknown) = own.raw();
        let (slots, unknown) = dist.raw_mut();
        slots[..n_own * k].copy_from_slice(&from_slots[..n_own * k]);
        unknown[..n_own].copy_from_slice(&from_unknown[..n_own]);
    }
    for packet in &gathered {
        if let Some(&first) = packet.nodes.first() {
            unpack(packet, &mut dist, first as usize);
        }
    }
    let outcome = Outcome {
        dist,
        initial_objective,
        history,
        converged,
        stopped,
    };
    Ok(Some(finish(
        graph,
        config,
        seed_rows,
        shared.priors.clone(),
        outcome,
        shared.start,
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::propagate::testgraphs::{self, bits, ALL};
    use crate::propagate::{propagate_with, Algorithm, ClassPrior};

    /// Everything of a result but its wall time.
    fn essence(p: &Propagation) -> impl PartialEq + std::fmt::Debug {
        let r = p.report();
        let history: Vec<_> = r
            .history
            .iter()
            .map(|s| {
                (
                    s.iteration,
                    s.max_change.to_bits(),
                    s.sum_change.to_bits(),
                    s.objective.to_bits(),
                )
            })
            .collect();
        (
            bits(p),
            (0..p.distribution().n_nodes())
                .map(|v| p.is_seed(v))
                .collect::<Vec<_>>(),
            history,
            r.initial_objective.to_bits(),
            r.converged,
            r.abstaining_nodes,
            r.abstaining_texts,
        )
    }

    fn same_as_one_machine(graph: Graph, config: &PropagationConfig, workers: &[usize]) {
        let single = propagate_with(&graph, graph.seeds(), config, |_| {}).unwrap();
        let graph = Arc::new(graph);
        for &w in workers {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = Arc::clone(&seen);
            let p = propagate_distributed(
                Arc::clone(&graph),
                graph.seeds(),
                config,
                &Cluster::local(w),
                move |s| log.lock().unwrap().push(*s),
            )
            .unwrap()
            .expect("worker 0 is in this process");
            assert_eq!(
                essence(&single),
                essence(&p),
                "{:?} on {w} workers",
                config.algorithm
            );
            // The progress callback saw every iteration once, in order, with its objective.
            assert_eq!(*seen.lock().unwrap(), p.report().history);
        }
    }

    /// Several blocks per worker, K below the number of labels, every algorithm: identical
    /// to the single engine on 1 to 4 workers (3 does not divide the 6 blocks evenly).
    #[test]
    fn every_algorithm_matches_the_single_engine_bit_for_bit() {
        let g = testgraphs::random(3000, 12000, 12, 200, 7);
        every_algorithm(&g, 3, 25, &[1, 2, 3, 4]);
    }

    /// [`same_as_one_machine`] for each algorithm with K = `top_k` and `iterations`.
    fn every_algorithm(graph: &Graph, top_k: usize, iterations: usize, workers: &[usize]) {
        for algorithm in ALL {
            let config = PropagationConfig {
                algorithm,
                top_k,
                iterations,
                ..PropagationConfig::default()
            };
            same_as_one_machine(graph.clone(), &config, workers);
        }
    }

    /// More workers than blocks (some own nothing), the default class mass normalization
    /// after the last iteration, and a bipartite graph with a node no seed reaches.
    #[test]
    fn idle_workers_orphans_and_class_priors() {
        let config = PropagationConfig::default();
        assert_eq!(config.class_prior, ClassPrior::Cmn { priors: None });
        same_as_one_machine(testgraphs::karate(), &config, &[3]);
        let config = PropagationConfig {
            algorithm: Algorithm::Mad,
            class_prior: ClassPrior::None,
            ..PropagationConfig::default()
        };
        let g = testgraphs::bipartite_with_orphan("zzz unrelated");
        same_as_one_machine(g, &config, &[2]);
    }

    /// A directed graph (row v names u, row u need not name v) through the library: each
    /// worker asks for the rows its own rows name, whatever the other direction holds.
    #[test]
    fn asymmetric_graphs_match_too() {
        let sym = testgraphs::random(2600, 9000, 6, 120, 3);
        let (mut offsets, mut neighbors, mut weights) = (vec![0u64], Vec::new(), Vec::new());
        for v in 0..sym.n_nodes() {
            // Keep the edges to larger ids only: every edge loses its reverse.
            let (nb, ws) = sym.row(v);
            for (&u, &w) in nb.iter().zip(ws).filter(|(&u, _)| u as usize > v) {
                neighbors.push(u);
                weights.push(w);
            }
            offsets.push(neighbors.len() as u64);
        }
        let parts = crate::graph::GraphParts {
            offsets,
            neighbors,
            weights,
            keys: sym.keys().to_vec(),
            text_nodes: sym.n_nodes(),
            records: Vec::new(),
            labels: sym.labels().to_vec(),
            seeds: sym.seeds().to_vec(),
            provenance: serde_json::Value::Null,
        };
        let directed = Graph::assemble(crate::graph::GraphKind::Edges, parts).unwrap();
        every_algorithm(&directed, 2, 15, &[3]);
    }

    /// A worker that panics (here worker 0's progress callback, at the third iteration)
    /// stops every worker at the next round, and the run returns the panic as an error
    /// instead of hanging the others.
    #[test]
    fn a_failing_worker_stops_them_all() {
        let g = Arc::new(testgraphs::random(3000, 12000, 12, 200, 7));
        for workers in [1, 2, 3] {
            let (tx, rx) = std::sync::mpsc::channel();
            let graph = Arc::clone(&g);
            std::thread::spawn(move || {
                let result = propagate_distributed(
                    Arc::clone(&graph),
                    graph.seeds(),
                    &PropagationConfig::default(),
                    &Cluster::local(workers),
                    |s| assert!(s.iteration < 3, "stop at iteration {}", s.iteration),
                );
                tx.send(result.map(|r| r.is_some())).unwrap();
            });
            let result = rx
                .recv_timeout(std::time::Duration::from_secs(120))
                .expect("the run ends instead of hanging");
            let err = result.unwrap_err().to_string();
            assert!(
                err.contains("worker 0 failed in the progress callback")
                    && err.contains("stop at iteration 3"),
                "{workers} workers: {err}"
            );
        }
    }

    /// A worker's panic is reported with its message, whichever way it was raised: a literal
    /// (`&str`), a formatted message (`String`), or another payload (named only as a panic).
    #[test]
    fn a_panic_is_reported_by_its_message() {
        let caught = |f: fn()| std::panic::catch_unwind(f).unwrap_err();
        // (The default hook prints each panic; the test harness captures that output.)
        let literal = caught(|| panic!("a literal"));
        let formatted = caught(|| panic!("row {}", 7));
        let other = caught(|| std::panic::panic_any(7u8));
        assert_eq!(panic_message(&*literal), "a literal");
        assert_eq!(panic_message(&*formatted), "row 7");
        assert_eq!(panic_message(&*other), "a panic");
    }

    /// The error of a default propagation of `graph` (its own seeds) as `cluster`.
    fn failure_of(graph: &Arc<Graph>, cluster: &Cluster) -> String {
        propagate_distributed(
            Arc::clone(graph),
            graph.seeds(),
            &PropagationConfig::default(),
            cluster,
            |_| {},
        )
        .unwrap_err()
        .to_string()
    }

    /// Held by every test that runs a cluster over loopback TCP, so that no two run at once:
    /// [`loopback_hosts`] frees its ports before timely binds them, and a port one test
    /// freed and another then drew joined the two tests' processes into one cluster (CI saw
    /// "worker 1 has another graph" beside the test whose processes hold different graphs).
    fn tcp_serial() -> std::sync::MutexGuard<'static, ()> {
        static TCP: Mutex<()> = Mutex::new(());
        // A test that failed holding it poisons it; the next still runs alone.
        TCP.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `n` free loopback `host:port`s (a port could be taken between this and timely's bind;
    /// a test would then fail loudly, not pass). Callers hold [`tcp_serial`].
    fn loopback_hosts(n: usize) -> Vec<String> {
        (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect::<Vec<_>>()
            .iter()
            .map(|l| format!("127.0.0.1:{}", l.local_addr().unwrap().port()))
            .collect()
    }

    /// One cluster process per file of `paths` over loopback TCP (threads of the test), each
    /// loading its own rows of its file and propagating with `config`: per process, in
    /// process order, the edges it held and its result (the error as text).
    fn processes_from_files(
        paths: &[std::path::PathBuf],
        config: &PropagationConfig,
    ) -> Vec<(usize, std::result::Result<Option<Propagation>, String>)> {
        let hosts = loopback_hosts(paths.len());
        let (tx, rx) = std::sync::mpsc::channel();
        for (process, path) in paths.iter().enumerate() {
            let (path, hosts, tx, config) =
                (path.clone(), hosts.clone(), tx.clone(), config.clone());
            std::thread::spawn(move || {
                let cluster = Cluster {
                    workers: 1,
                    hosts,
                    process,
                    connect_timeout: Some(std::time::Duration::from_secs(60)),
                };
                let shard = Arc::new(Graph::load_rows(&path, |n| cluster.rows(n)).unwrap());
                let result = propagate_distributed(
                    Arc::clone(&shard),
                    shard.seeds(),
                    &config,
                    &cluster,
                    |_| {},
                );
                let held = shard.neighbors().len();
                tx.send((process, held, result.map_err(|e| e.to_string())))
                    .unwrap();
            });
        }
        let mut out: Vec<_> = (0..paths.len())
            .map(|_| {
                rx.recv_timeout(std::time::Duration::from_secs(120))
                    .expect("every process ends")
            })
            .collect();
        out.sort_by_key(|r| r.0);
        out.into_iter().map(|(_, held, r)| (held, r)).collect()
    }

    /// The rows of a cluster's processes: contiguous, in order, covering every node once,
    /// each the union of its workers' nodes.
    #[test]
    fn process_rows_share_out_the_nodes() {
        for (n, processes, workers) in [
            (0, 2, 1),
            (1, 3, 2),
            (5000, 3, 1),
            (9000, 2, 3),
            (700, 4, 2),
        ] {
            let hosts = vec!["127.0.0.1:1".to_string(); processes];
            let mut next = 0;
            for process in 0..processes {
                let cluster = Cluster {
                    workers,
                    hosts: hosts.clone(),
                    process,
                    connect_timeout: None,
                };
                let rows = cluster.rows(n);
                assert_eq!(rows.start, next, "{n} {processes} {workers}");
                let peers = processes * workers;
                for w in 0..workers {
                    let own = nodes_of(n, peers, process * workers + w);
                    assert!(rows.start <= own.start && own.end <= rows.end);
                }
                next = rows.end;
            }
            assert_eq!(next, n);
            assert_eq!(Cluster::local(3).rows(n), 0..n);
        }
    }

    /// Three processes over loopback TCP, each holding the edges of its own rows only
    /// ([`Graph::load_rows`]), for every algorithm: process 0 returns the single engine's
    /// result bit for bit. A process given a graph without its rows refuses to start.
    #[test]
    fn processes_that_load_only_their_rows_match_the_single_engine() {
        let _tcp = tcp_serial();
        let g = testgraphs::random(3000, 12000, 12, 200, 7);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.graph");
        g.save(&path).unwrap();
        for algorithm in ALL {
            let config = PropagationConfig {
                algorithm,
                top_k: 3,
                iterations: 12,
                ..PropagationConfig::default()
            };
            let single = propagate_with(&g, g.seeds(), &config, |_| {}).unwrap();
            let runs = processes_from_files(&[path.clone(), path.clone(), path.clone()], &config);
            let mut held = 0;
            for (process, (edges, result)) in runs.into_iter().enumerate() {
                assert!(
                    edges < g.neighbors().len() / 2,
                    "process {process} holds {edges} edges"
                );
                held += edges;
                match (process, result.unwrap()) {
                    (0, Some(p)) => assert_eq!(essence(&single), essence(&p), "{algorithm:?}"),
                    (0, None) => panic!("process 0 returns the result"),
                    (_, r) => assert!(r.is_none()),
                }
            }
            assert_eq!(
                held,
                g.neighbors().len(),
                "the processes' rows cover the graph once"
            );
        }
        // Process 1 of 2 with the rows of process 0.
        let cluster = Cluster {
            workers: 1,
            hosts: loopback_hosts(2),
            process: 1,
            connect_timeout: Some(std::time::Duration::from_secs(1)),
        };
        let shard = Arc::new(Graph::load_rows(&path, |n| 0..n / 2).unwrap());
        let err = failure_of(&shard, &cluster);
        assert!(
            err.contains("holds rows 0..1500") && err.contains("load_rows"),
            "{err}"
        );
    }

    /// Two files whose rows have the same lengths and degrees (a ring with two chords whose
    /// endpoints are swapped, unit weights) are told apart: the processes refuse to run
    /// instead of mixing the graphs (a review found them mixed).
    /// An edge-list graph of `n` nodes named `n0…` with the undirected `edges` and one seed,
    /// node 0 with the label `x`.
    fn seeded_at_0(n: usize, edges: Vec<(u32, u32, f32)>) -> Graph {
        use crate::graph::{symmetric_csr, GraphKind, GraphParts};
        let (offsets, neighbors, weights) = symmetric_csr(n, edges);
        let parts = GraphParts {
            offsets,
            neighbors,
            weights,
            keys: (0..n).map(|v| format!("n{v}")).collect(),
            text_nodes: n,
            seeds: vec![Seed {
                node: 0,
                label: 0,
                weight: 1.0,
            }],
            labels: vec!["x".into()],
            ..GraphParts::default()
        };
        Graph::from_parts(GraphKind::Edges, parts).unwrap()
    }

    #[test]
    fn processes_with_graphs_that_differ_only_in_their_edges_refuse_to_run() {
        let _tcp = tcp_serial();
        let n = 1200usize;
        let ring = |chords: [(u32, u32); 2]| {
            let mut edges: Vec<(u32, u32, f32)> = (0..n as u32)
                .map(|v| (v, (v + 1) % n as u32, 1.0))
                .collect();
            edges.extend(chords.iter().map(|&(a, b)| (a, b, 1.0)));
            seeded_at_0(n, edges)
        };
        let (a, b) = (ring([(0, 72), (800, 1067)]), ring([(0, 1067), (800, 72)]));
        assert_eq!(a.offsets(), b.offsets());
        assert!((0..n).all(|v| a.degree(v) == b.degree(v)));
        let dir = tempfile::tempdir().unwrap();
        let paths = [dir.path().join("a.graph"), dir.path().join("b.graph")];
        a.save(&paths[0]).unwrap();
        b.save(&paths[1]).unwrap();
        for (_, result) in processes_from_files(&paths, &PropagationConfig::default()) {
            let err = result.map(|_| ()).unwrap_err();
            assert!(err.contains("has another graph"), "{err}");
        }
    }

    /// Two processes of one cluster over loopback TCP, here two threads of the test, with one
    /// and with two workers each: process 0 returns the single engine's result, process 1
    /// `None`, and both report every iteration with the same figures. With two workers the
    /// reporting worker of process 1 is global worker 2, not 1 (with one worker each,
    /// `process / workers` in place of `process * workers` went unnoticed).
    #[test]
    fn processes_over_tcp_report_everywhere_and_return_in_process_0() {
        let _tcp = tcp_serial();
        let g = Arc::new(testgraphs::random(3000, 12000, 12, 200, 7));
        let config = PropagationConfig::default();
        let single = propagate_with(&g, g.seeds(), &config, |_| {}).unwrap();
        for workers in [1, 2] {
            let hosts = loopback_hosts(2);
            let (tx, rx) = std::sync::mpsc::channel();
            for process in 0..2 {
                let (graph, hosts, tx) = (Arc::clone(&g), hosts.clone(), tx.clone());
                let config = config.clone();
                std::thread::spawn(move || {
                    let seen = Arc::new(Mutex::new(Vec::new()));
                    let log = Arc::clone(&seen);
                    let cluster = Cluster {
                        workers,
                        hosts,
                        process,
                        connect_timeout: Some(std::time::Duration::from_secs(60)),
                    };
                    let result = propagate_distributed(
                        Arc::clone(&graph),
                        graph.seeds(),
                        &config,
                        &cluster,
                        move |s| log.lock().unwrap().push(*s),
                    );
                    let seen = seen.lock().unwrap().clone();
                    tx.send((process, result.map_err(|e| e.to_string()), seen))
                        .unwrap();
                });
            }
            let mut histories = vec![Vec::new(); 2];
            for _ in 0..2 {
                let (process, result, seen) = rx
                    .recv_timeout(std::time::Duration::from_secs(120))
                    .expect("both processes end");
                let result = result.unwrap();
                match process {
                    0 => assert_eq!(essence(&single), essence(&result.unwrap())),
                    _ => assert!(result.is_none(), "only process 0 returns the result"),
                }
                histories[process] = seen;
            }
            assert_eq!(histories[0], single.report().history, "{workers} workers");
            assert_eq!(histories[1], histories[0], "{workers} workers");
        }
    }

    /// A cluster of one process (a hosts file of one line) has no peer to wait for or to lose:
    /// its connect timeout does not apply, however short, and it runs as worker threads do.
    /// (Applied, a 1 ns limit fails the run at its first wait.)
    #[test]
    fn a_cluster_of_one_process_has_no_timeout() {
        let _tcp = tcp_serial();
        let g = Arc::new(testgraphs::random(3000, 12000, 12, 200, 7));
        let config = PropagationConfig::default();
        let single = propagate_with(&g, g.seeds(), &config, |_| {}).unwrap();
        let cluster = Cluster {
            workers: 2,
            hosts: loopback_hosts(1),
            process: 0,
            connect_timeout: Some(std::time::Duration::from_nanos(1)),
        };
        let p = propagate_distributed(Arc::clone(&g), g.seeds(), &config, &cluster, |_| {})
            .unwrap()
            .expect("the one process holds worker 0");
        assert_eq!(essence(&single), essence(&p));
    }

    /// A worker asks each owner for the ghosts of the owner's range alone: from its first
    /// node up to, not including, the next range's first node. (Counting that node in the
    /// range before too made the owner of that range send, as that node's row, a row of its
    /// own numbering that is not it: one of its ghosts, or past its last row.)
    #[test]
    fn ghosts_are_asked_of_their_owner_alone() {
        // Three blocks, one a worker; worker 2's first nodes read both ends of the others.
        let n = 3 * BLOCK;
        let read = [0, BLOCK - 1, BLOCK, 2 * BLOCK - 1];
        let edges = read
            .iter()
            .enumerate()
            .map(|(i, &u)| ((2 * BLOCK + i) as u32, u as u32, 1.0))
            .collect();
        let g = seeded_at_0(n, edges);
        let share = Share::new(&g, nodes_of(n, 3, 2));
        assert_eq!(share.own, 2 * BLOCK..n);
        assert_eq!(share.ghosts, read.map(|u| u as u32));
        assert_eq!(share.ghosts_in(&nodes_of(n, 3, 0)), 0..2);
        assert_eq!(share.ghosts_in(&nodes_of(n, 3, 1)), 2..4);
        assert_eq!(share.ghosts_in(&nodes_of(n, 3, 2)), 4..4);
    }

    #[test]
    fn nodes_are_shared_in_whole_blocks() {
        for (n, peers) in [(1, 1), (1, 3), (3000, 4), (3000, 3), (512 * 5 + 1, 2)] {
            let ranges: Vec<_> = (0..peers).map(|w| nodes_of(n, peers, w)).collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[peers - 1].end, n);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            for r in &ranges {
                assert!(r.start % BLOCK == 0 || r.start == n, "{r:?}");
            }
        }
    }

    #[test]
    fn bad_clusters_are_refused() {
        let g = Arc::new(testgraphs::karate());
        let run = |cluster: Cluster| {
            propagate_distributed(
                Arc::clone(&g),
                g.seeds(),
                &PropagationConfig::default(),
                &cluster,
                |_| {},
            )
            .unwrap_err()
            .to_string()
        };
        assert!(run(Cluster::local(0)).contains("workers"));
        let far = Cluster {
            workers: 1,
            hosts: vec!["localhost:1".into()],
            process: 1,
            connect_timeout: None,
        };
        assert!(run(far).contains("process"));
    }

    /// A process whose peers never come (here, the only one started of two) stops with an
    /// error after its connect timeout instead of waiting for ever: process 0 waits for
    /// process 1 to connect, process 1 retries connecting to process 0.
    #[test]
    fn a_process_alone_gives_up_after_its_connect_timeout() {
        let _tcp = tcp_serial();
        let g = Arc::new(testgraphs::karate());
        for process in 0..2 {
            let hosts = loopback_hosts(2);
            let cluster = Cluster {
                workers: 1,
                hosts,
                process,
                connect_timeout: Some(std::time::Duration::from_millis(1500)),
            };
            let started = Instant::now();
            let err = propagate_distributed(
                Arc::clone(&g),
                g.seeds(),
                &PropagationConfig::default(),
                &cluster,
                |_| {},
            )
            .unwrap_err();
            assert!(matches!(err, Error::Cluster { .. }), "{err}");
            assert!(err.to_string().contains("did not all connect"), "{err}");
            assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
        }
    }

    /// A process whose peer's address is held by another program (which accepts and then
    /// says nothing) connects, then hears nothing: it stops at its connect timeout, as it
    /// would if a connected peer froze, instead of waiting for ever.
    #[test]
    fn a_peer_that_never_speaks_stops_the_run_at_the_timeout() {
        let _tcp = tcp_serial();
        let g = Arc::new(testgraphs::karate());
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut hosts = vec![format!(
            "127.0.0.1:{}",
            squatter.local_addr().unwrap().port()
        )];
        hosts.extend(loopback_hosts(1));
        // Accepts every connection and keeps it open, silent.
        std::thread::spawn(move || {
            let held: Vec<_> = squatter.incoming().take(4).collect();
            std::thread::sleep(std::time::Duration::from_secs(60));
            drop(held);
        });
        let cluster = Cluster {
            workers: 1,
            hosts,
            process: 1,
            connect_timeout: Some(std::time::Duration::from_millis(1500)),
        };
        let err = failure_of(&g, &cluster);
        assert!(
            err.contains("process 1 of 2: no iteration finished within 1.5 s"),
            "{err}"
        );
    }

    /// Each malformed line is refused with its line number, and the edge cases of a valid
    /// one pass. (The CLI test of these lines catches a line let through only after its
    /// 300 s default connect timeout, waiting for a process at the bad address.)
    #[test]
    fn a_bad_host_line_is_refused_by_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.txt");
        for bad in [
            "h1",
            ":7000",
            "h1:abc",
            "h1:0",
            "h1:65536",
            "h1:7000 # ssh",
            "h 1:7000",
        ] {
            std::fs::write(&path, format!("# cluster\n\nh0:7000\n{bad}\n")).unwrap();
            let err = Cluster::read_hosts(&path).unwrap_err().to_string();
            assert!(
                err.contains("hosts.txt:4: expected host:port"),
                "{bad}: {err}"
            );
        }
        std::fs::write(&path, "[::1]:1\n  h1:65535  \n").unwrap();
        assert_eq!(Cluster::read_hosts(&path).unwrap(), ["[::1]:1", "h1:65535"]);
    }

    #[test]
    fn an_address_given_twice_is_refused_by_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.txt");
        std::fs::write(&path, "# cluster\nh0:7000\nh1:7000\n\nh0:7000\n").unwrap();
        let err = Cluster::read_hosts(&path).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "hosts.txt:5: h0:7000 is given twice (first on line 2): one process an address"
            ),
            "{err}"
        );
    }
}
