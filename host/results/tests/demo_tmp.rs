use annvil_results::*;
#[test]
fn demo() {
    let dir = std::path::Path::new("/tmp/annvil-demo");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut store = Store::open(dir.join("r.sqlite")).unwrap();
    let env = Environment::detect("0.1.0", "rustc 1.95.0", Some("deadbeef"));
    let run = store.begin_run(&env, "host run --dataset fashion-mnist").unwrap();
    let cfg = EvalConfig { k: 10, runs: 5, mode: Mode::Single, query_count: 10000, extra: Params::new() };
    let mk = |name: &str, b: &[(&str,&str)]| EvaluationKey { variant_name: name.into(), variant_hash: "abc".into(), dataset_name: "fashion-mnist-784-euclidean".into(), dataset_hash: "0123456789abcdef".into(), build_params: b.iter().map(|(k,v)| (k.to_string(), v.to_string())).collect(), config: cfg.clone() };
    let curves: Vec<(&str, f64, f64)> = vec![("hnsw-glass", 40.0, 30000.0), ("nsg-rust", 60.0, 25000.0), ("ivf-flat", 15.0, 8000.0), ("bruteforce-ish", 400.0, 900.0), ("weak", 5.0, 50000.0)];
    for (name, scale, q0) in curves {
        let id = store.start_evaluation(&mk(name, &[("M","16")]), run).unwrap();
        let mut pts = vec![];
        for ef in [10u32, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512] {
            let recall = if name == "weak" { 0.8 * (1.0 - (-(ef as f64)/scale).exp()) } else { 1.0 - (-(ef as f64)/scale).exp() * 0.9 };
            let qps = q0 * 10.0 / (10.0 + ef as f64);
            pts.push(SweepPoint { search_params: [("ef".to_string(), ef.to_string())].into(), recall, recall_min: recall, recall_max: recall, runs_disagree: false, qps, latency_p50_us: 1e6/qps, latency_p95_us: 1.3e6/qps, latency_p99_us: 1.6e6/qps, runs: 5, distance_computations: Some(ef as f64 * 20.0), invalid_queries: 0, mode: Mode::Single });
        }
        store.finish_evaluation(id, &EvaluationOutcome { build_seconds: 12.5, index_memory_bytes: Some(200 << 20), rss_bytes: Some(400<<20), build_log: Some("log line".into()) }, &pts).unwrap();
    }
    let id = store.start_evaluation(&mk("segfaulter", &[]), run).unwrap();
    store.fail_evaluation(id, &Failure::new("crash: SIGSEGV", "signal 11")).unwrap();
    store.end_run(run).unwrap();
    let files = write_reports(&store, "fashion-mnist-784-euclidean", &dir.join("out")).unwrap();
    println!("{files:?}");
    print!("{}", terminal_table(&store.leaderboard("fashion-mnist-784-euclidean").unwrap().unwrap()));
}
