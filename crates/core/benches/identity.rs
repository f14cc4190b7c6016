//! Identity graph throughput and memory on the committed synthetic workload.
//!
//! Resolves the default [`Workload`] (1,000,000 events from 200,000 visitors: 20% identify,
//! 5% on several devices, 1% junk ids) into a fresh [`MemStore`] and prints events per
//! second on one core and bytes of memory per identifier, measured with a counting global
//! allocator. Events are built in chunks outside the timed region, so only resolution is
//! timed. Run with `cargo bench -p weft-core --bench identity` (or `make bench`).
//!
//! On a shared machine, count instructions rather than time: `WEFT_BENCH_SCALE=0.05
//! WEFT_BENCH_ONCE=1 valgrind --tool=callgrind --toggle-collect='identity::ingest_one*'
//! <bench binary> --bench` resolves 50,000 events and counts only their resolution.

use std::alloc::System;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use weft_core::event::Event;
use weft_core::identity::workload::{Workload, WorkloadSpec};
use weft_core::identity::{ingest, IdentityConfig, IngestError, MemStore, Outcome};
use weft_core::segment::FeatureSpec;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Events are built this many at a time, just before they are resolved: the graph
/// resolves a collector's batches right after parsing them, so their events are fresh in
/// the cache. (Building 50,000 ahead measured the cache misses of reading events back
/// from memory, about ten per event, which a real stream does not have.)
const CHUNK: usize = 1_000;

/// This thread's time on a CPU, from the kernel's scheduler statistics: unlike wall time,
/// it does not grow when other processes share the cores.
fn cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// Bytes allocated and not yet freed (stats_alloc already books a realloc's growth as
/// allocated and its shrinking as deallocated).
fn live_bytes() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// The store measured: no event log (the Durable Object keeps events in SQLite), and
/// the default cache of unpacked profiles unless `WEFT_BENCH_HOT` sets its size.
fn new_store() -> MemStore {
    let hot = std::env::var("WEFT_BENCH_HOT")
        .ok()
        .and_then(|s| s.parse().ok());
    let store = MemStore::without_events();
    match hot {
        Some(hot) => store.with_hot_capacity(hot),
        None => store,
    }
}

/// One event, kept out of line so that profilers can attribute the cost of resolving
/// (`valgrind --tool=callgrind --toggle-collect='identity::ingest_one*'`).
#[inline(never)]
fn ingest_one(
    store: &mut MemStore,
    config: &IdentityConfig,
    spec: &FeatureSpec,
    event: &Event,
) -> Result<Outcome, IngestError> {
    ingest(store, config, spec, event)
}

/// Resolves the whole workload into `store`, returning the wall and CPU time spent
/// resolving.
fn run(workload: &Workload, store: &mut MemStore, warnings: &mut usize) -> (Duration, Duration) {
    let config = IdentityConfig::default();
    let spec = FeatureSpec::default();
    let mut spent = Duration::ZERO;
    let mut cpu = Duration::ZERO;
    let mut start = 0;
    while start < workload.len() {
        let end = (start + CHUNK).min(workload.len());
        let events: Vec<_> = (start..end).map(|i| workload.event(i)).collect();
        let t = Instant::now();
        let c = cpu_time();
        for e in &events {
            match ingest_one(store, &config, &spec, e) {
                Ok(outcome) => *warnings += outcome.warnings.len(),
                Err(_) => *warnings += 1,
            }
        }
        spent += t.elapsed();
        cpu += cpu_time().saturating_sub(c);
        start = end;
    }
    (spent, cpu)
}

fn identity(c: &mut Criterion) {
    let t = Instant::now();
    // WEFT_BENCH_SCALE=0.1 runs a tenth of the workload, for quick looks and profilers.
    let scale: f64 = std::env::var("WEFT_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let full = WorkloadSpec::default();
    let spec = WorkloadSpec {
        events: (full.events as f64 * scale) as usize,
        visitors: (f64::from(full.visitors) * scale) as u32,
        ..full
    };
    let workload = Workload::new(spec);
    eprintln!(
        "workload: {} events planned in {:.1?}",
        workload.len(),
        t.elapsed()
    );

    // One measured pass for the headline figures and the memory count.
    let before = live_bytes();
    let mut store = new_store();
    let mut warnings = 0;
    let (spent, cpu) = run(&workload, &mut store, &mut warnings);
    let total = live_bytes() - before;
    let counts = store.counts();
    let parts = store.footprint();
    store.clear_seen();
    let graph = live_bytes() - before;
    let per_id = graph as f64 / counts.identifiers as f64;
    eprintln!(
        "identity: {} events in {:.2?} wall = {:.0} events/s; {:.2?} on CPU = {:.0} events/s \
         per core; {} profiles, {} identifiers, {} merges, {warnings} warnings",
        workload.len(),
        spent,
        workload.len() as f64 / spent.as_secs_f64(),
        cpu,
        workload.len() as f64 / cpu.as_secs_f64(),
        counts.profiles,
        counts.identifiers,
        counts.merges,
    );
    let per = |bytes: usize| bytes as f64 / counts.identifiers as f64;
    eprintln!(
        "identity memory by part (bytes/identifier, from capacities): index {:.1}, profile \
         slots {:.1}, packed blobs {:.1}, unpacked cache {:.1}, message ids {:.1}",
        per(parts.identifiers),
        per(parts.profiles),
        per(parts.packed),
        per(parts.unpacked),
        per(parts.messages),
    );
    eprintln!(
        "identity memory: graph (identifiers + profiles) {:.1} MB = {per_id:.1} bytes/identifier; \
         with the dedupe set of {} message ids {:.1} MB = {:.1} bytes/identifier",
        graph as f64 / 1e6,
        workload.len(),
        total as f64 / 1e6,
        total as f64 / counts.identifiers as f64,
    );
    drop(store);

    // WEFT_BENCH_ONCE=1 stops after the measured pass (for profilers).
    if std::env::var_os("WEFT_BENCH_ONCE").is_some() {
        return;
    }
    let mut group = c.benchmark_group("identity");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(criterion::Throughput::Elements(workload.len() as u64));
    group.bench_function("ingest 1M events, 200k visitors", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let mut store = new_store();
                let mut warnings = 0;
                spent += run(&workload, &mut store, &mut warnings).0;
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(benches, identity);
criterion_main!(benches);
